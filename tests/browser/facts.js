// Layout, mark and contrast facts read from the live page; the Python tests assert on them.
// Evaluated by Playwright as one arrow function; returns plain JSON.
() => {
  const EPS = 0.5;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });

  // Any CSS colour (rgb, hex, oklch, color-mix ...) -> [r, g, b, a] in sRGB, a in 0..1.
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "rgba(0, 0, 0, 0)";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, below) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat([1]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");

  // The colours an element's text may sit on: its own and its ancestors' backgrounds,
  // composited from the first opaque one up; a gradient contributes each of its stops.
  const backgrounds = (el) => {
    const layers = [];
    let base = null;
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      const colour = rgba(style.backgroundColor);
      const stops = (style.backgroundImage.match(/(rgba?|oklch|oklab|lab|lch|hsla?|color)\([^()]*\)|transparent/g) || []).map(rgba);
      if (colour[3] >= 1 && !stops.length) {
        base = colour;
        break;
      }
      layers.push({ colour, stops });
    }
    if (base === null) {
      const scheme = getComputedStyle(document.documentElement).colorScheme;
      base = /dark/.test(scheme) && !/light/.test(scheme) ? [18, 18, 18, 1] : [255, 255, 255, 1];
    }
    let candidates = [base];
    for (const layer of layers.reverse()) {
      candidates = candidates.map((c) => (layer.colour[3] > 0 ? over(layer.colour, c) : c));
      if (layer.stops.length) {
        candidates = candidates.flatMap((c) => layer.stops.map((s) => (s[3] > 0 ? over(s, c) : c)));
      }
    }
    return candidates;
  };
  const opacity = (el) => {
    let value = 1;
    for (let e = el; e; e = e.parentElement) value *= parseFloat(getComputedStyle(e).opacity);
    return value;
  };
  const contrast = (el, property) => {
    const style = getComputedStyle(el);
    const ink = rgba(style[property]);
    ink[3] *= opacity(el);
    let worst = null;
    for (const bg of backgrounds(el)) {
      const value = ratio(ink[3] < 1 ? over(ink, bg) : ink, bg);
      if (worst === null || value < worst.ratio) worst = { ratio: value, fg: hex(ink), bg: hex(bg) };
    }
    return worst;
  };

  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {
      top: r.top + scrollY, bottom: r.bottom + scrollY,
      left: r.left + scrollX, right: r.right + scrollX,
      width: r.width, height: r.height,
    };
  };
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(el).visibility !== "hidden";
  };
  const describe = (el) => {
    const cls = el.getAttribute("class");
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `<${el.tagName.toLowerCase()}${cls ? ` class="${cls}"` : ""}> ${JSON.stringify(text)}`;
  };
  const inside = (inner, outer) =>
    inner.left >= outer.left - EPS && inner.right <= outer.right + EPS;

  const examples = [...document.querySelectorAll("div.evaldemo")].filter(shown);
  const root = document.documentElement;
  const page = {
    scrollWidth: root.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    innerWidth: window.innerWidth,
    clientWidth: root.clientWidth,
    background: hex(backgrounds(document.body)[0]),
    backgroundLuminance: luminance(backgrounds(document.body)[0]),
    htmlTheme: root.dataset.theme || null,
    bodyTheme: document.body.dataset.theme || null,
    prefersDark: matchMedia("(prefers-color-scheme: dark)").matches,
  };

  const out = { page, examples: [] };
  for (const [index, example] of examples.entries()) {
    const ex = { index, caption: (example.querySelector(".evaldemo-caption") || {}).textContent || null };
    ex.box = box(example);
    ex.parentBox = box(example.parentElement);
    ex.panels = [...example.querySelectorAll(".evaldemo-panels > .evaldemo-panel")].map((p) => ({
      tag: p.tagName.toLowerCase(),
      label: p.getAttribute("aria-label"),
      title: (p.querySelector(".evaldemo-title") || {}).textContent || null,
      box: box(p),
      overflows: p.scrollWidth > p.clientWidth + 1,
      need: parseFloat(getComputedStyle(p).flexBasis),
    }));
    const row = example.querySelector(".evaldemo-panels");
    ex.panelsBox = row ? box(row) : null;
    ex.panelsGap = row ? parseFloat(getComputedStyle(row).columnGap) || 0 : 0;
    // Nothing sticks out of the example, or out of a box that clips it, unless it sits in
    // a box that scrolls (that box is then judged itself).
    ex.unclipped = [];
    const overflowOf = (e) => getComputedStyle(e).overflowX;
    for (const el of example.querySelectorAll("*")) {
      if (!shown(el) || el.closest(".evaldemo-sr")) continue;
      let container = example;
      for (let e = el.parentElement; e && e !== example; e = e.parentElement) {
        if (overflowOf(e) !== "visible") {
          container = e;
          break;
        }
      }
      if (["auto", "scroll"].includes(overflowOf(container))) continue;
      if (!inside(box(el), box(container))) ex.unclipped.push({ what: describe(el), in: describe(container) });
    }
    // The input line: under the code, as a copyable Python block.
    const input = example.querySelector("div.evaldemo-input pre");
    ex.inputLine = input && {
      text: input.textContent.replace(/\n$/, ""),
      shown: shown(input),
      afterCode: !!example.querySelector("div.evaldemo-code + div.evaldemo-input"),
      python: input.closest("div.highlight-python") !== null,
      fits: input.scrollWidth <= input.clientWidth + 1,
      overflowX: getComputedStyle(input).overflowX,
      focusable: input.tabIndex >= 0,
    };
    // Grids, panel by panel: where each cell is, whether the grid fits or visibly scrolls,
    // and what its legend names against what is marked.
    ex.grids = [...example.querySelectorAll(".evaldemo-panels > .evaldemo-panel")].map((p) => {
      const grid = p.querySelector(".evaldemo-grid-box");
      if (!grid) return null;
      const legend = p.querySelector(".evaldemo-legend");
      const style = getComputedStyle(grid);
      return {
        box: box(grid),
        cells: [...grid.querySelectorAll("td")].map((td) => ({ left: box(td).left, width: box(td).width })),
        rows: grid.querySelector("table").querySelectorAll("tbody tr").length,
        columns: [...grid.querySelectorAll("table")].reduce((n, t) => n + t.querySelector("tbody tr").children.length, 0),
        blocks: [...grid.querySelectorAll("table.evaldemo-grid")].map((t) => ({
          box: box(t),
          indices: [...t.querySelectorAll("thead th")].map((th) => th.textContent),
        })),
        scrolls: grid.scrollWidth > grid.clientWidth + 1,
        panelBox: box(p),
        fontSize: parseFloat(getComputedStyle(p).fontSize),
        gridFontSize: parseFloat(getComputedStyle(grid.querySelector("table")).fontSize),
        fits: grid.scrollWidth <= grid.clientWidth + 1,
        overflowX: style.overflowX,
        focusable: grid.tabIndex >= 0,
        scrollShadow: /local/.test(style.backgroundAttachment) && /radial-gradient/.test(style.backgroundImage),
        legendKinds: legend ? [...legend.children].map((c) => c.className.replace("evaldemo-key-", "").replace("evaldemo-", "")) : [],
        markedKinds: [...new Set([...grid.querySelectorAll("td.evaldemo-differs, td.evaldemo-zeroed")].map((td) =>
          td.classList.contains("evaldemo-zeroed") ? "zeroed" : "differs"))],
        printoutFolded: !!p.querySelector("details.evaldemo-fold:not([open]) pre"),
      };
    });
    // Marks never wear a mode's colour: the glyphs against the panels' top borders.
    ex.modeColours = [...example.querySelectorAll(".evaldemo-panels > .evaldemo-panel")].map((p) =>
      hex(rgba(getComputedStyle(p).borderTopColor)));
    ex.markColours = [...example.querySelectorAll(".evaldemo-mark, svg.evaldemo-chart .evaldemo-pt-differs, svg.evaldemo-chart .evaldemo-pt-zeroed")]
      .map((m) => hex(rgba(m instanceof SVGElement ? (m.classList.contains("evaldemo-pt-zeroed") ? getComputedStyle(m).stroke : getComputedStyle(m).fill) : getComputedStyle(m).color)));
    // The chart: its size, tick labels, key and caption.
    ex.charts = [...example.querySelectorAll("figure.evaldemo-chart-box")].filter(shown).map((figure) => {
      const svg = figure.querySelector("svg.evaldemo-chart");
      const caption = figure.querySelector("figcaption");
      const ticks = [...svg.querySelectorAll("text.evaldemo-tick-label")].filter(shown);
      return {
        svg: box(svg),
        column: box(example).width,
        ticks: ticks.map((t) => t.textContent),
        tickPx: Math.min(...ticks.map((t) => t.getBoundingClientRect().height)),
        key: [...figure.querySelectorAll("ul.evaldemo-chart-key li")].filter(shown).map((li) => li.textContent.trim()),
        counts: [...svg.querySelectorAll("text.evaldemo-count")].map((t) => t.textContent),
        caption: caption ? box(caption) : null,
        captionText: caption ? caption.querySelector(".evaldemo-chart-text").textContent : null,
        label: svg.getAttribute("aria-label"),
      };
    });
    // Claims: a badge each, with its icon.
    ex.claims = [...example.querySelectorAll(".evaldemo-claim")].map((badge) => ({
      text: badge.textContent,
      held: badge.classList.contains("evaldemo-held"),
      icon: getComputedStyle(badge, "::before").content,
      shown: shown(badge),
    }));
    // Code, outputs, grids: each stays inside its panel (or example) and scrolls itself.
    ex.scrollers = [...example.querySelectorAll("pre, .evaldemo-grid-box, .evaldemo-chart-box")]
      .filter(shown)
      .map((el) => {
        const container = el.closest(".evaldemo-panel") || example;
        const style = getComputedStyle(el);
        return {
          what: describe(el),
          contained: inside(box(el), box(container)),
          scrolls: el.scrollWidth > el.clientWidth + 1,
          overflowX: style.overflowX,
          focusable: el.tabIndex >= 0 || !!el.querySelector("a, button, [tabindex]"),
        };
      });
    // Copy buttons (sphinx-copybutton) stay inside their block.
    ex.copyButtons = [...example.querySelectorAll("button.copybtn")].map((b) => {
      const block = b.closest(".highlight") || b.parentElement;
      return { contained: inside(box(b), box(block)) && box(b).top >= box(block).top - EPS };
    });
    // Marked elements: the glyph, and a cue that is not colour.
    ex.marked = [...example.querySelectorAll("td.evaldemo-differs, td.evaldemo-zeroed")].map((td) => {
      const style = getComputedStyle(td);
      const mark = td.querySelector(".evaldemo-mark");
      const sr = td.querySelector(".evaldemo-sr");
      return {
        kind: td.classList.contains("evaldemo-zeroed") ? "zeroed" : "differs",
        glyph: mark ? mark.textContent : null,
        glyphShown: mark ? shown(mark) : false,
        glyphHidden: mark ? mark.getAttribute("aria-hidden") : null,
        srText: sr ? sr.textContent : null,
        fontWeight: parseInt(style.fontWeight, 10),
        fontStyle: style.fontStyle,
        decoration: style.textDecorationLine,
        backgroundImage: style.backgroundImage,
        backgroundColor: style.backgroundColor,
        markPx: mark ? parseFloat(getComputedStyle(mark).fontSize) : 0,
        textPx: parseFloat(getComputedStyle(td.closest(".evaldemo-panel")).fontSize),
      };
    });
    // Cell by cell, a grid against the other panel's grid: unmarked cells agree.
    // A grid that says "All N elements differ" marks none of them one by one.
    const panelsOf = [...example.querySelectorAll(".evaldemo-panels > .evaldemo-panel")];
    const allDiffer = panelsOf.some((p) => p.querySelector("[data-all-differ]"));
    const grids = panelsOf.map((p) =>
      [...p.querySelectorAll("table.evaldemo-grid td")].map((td) => ({
        value: td.firstChild ? td.firstChild.textContent.trim() : "",
        marked: allDiffer || td.classList.contains("evaldemo-differs") || td.classList.contains("evaldemo-zeroed"),
      })));
    ex.gridMismatches = [];
    if (grids.length === 2 && grids[0].length && grids[0].length === grids[1].length) {
      grids[0].forEach((cell, i) => {
        const other = grids[1][i];
        if (cell.value !== other.value && !(cell.marked && other.marked)) ex.gridMismatches.push(i);
        if (cell.value === other.value && (cell.marked || other.marked) && !allDiffer) ex.gridMismatches.push(i);
      });
    }
    ex.allDiffer = allDiffer;
    ex.gridCells = grids.map((g) => g.length);
    // Text contrast: every element holding text of its own, outside the highlighted code.
    ex.lowContrast = [];
    ex.checkedText = 0;
    for (const el of example.querySelectorAll("*")) {
      if (el.closest(".evaldemo-code") || !shown(el)) continue;
      const ownText = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
      if (!ownText) continue;
      const isSvgText = el instanceof SVGElement;
      const worst = contrast(el, isSvgText ? "fill" : "color");
      ex.checkedText += 1;
      if (worst.ratio < 4.5) ex.lowContrast.push({ what: describe(el), ...worst, ratio: +worst.ratio.toFixed(2) });
    }
    // The chart's marks are graphics: 3:1 against the chart's background (WCAG 1.4.11).
    ex.chartMarks = [];
    for (const [selector, property] of [[".evaldemo-pt-differs", "fill"], [".evaldemo-pt-zeroed", "stroke"]]) {
      const mark = example.querySelector(`svg.evaldemo-chart ${selector}`);
      if (!mark) continue;
      const worst = contrast(mark, property);
      ex.chartMarks.push({ what: selector, ...worst, ratio: +worst.ratio.toFixed(2) });
    }
    out.examples.push(ex);
  }
  return out;
}
