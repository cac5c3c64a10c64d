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
      };
    });
    // Cell by cell, a grid against the other panel's grid: unmarked cells agree.
    const grids = [...example.querySelectorAll(".evaldemo-panels > .evaldemo-panel")].map((p) =>
      [...p.querySelectorAll("table.evaldemo-grid td")].map((td) => ({
        value: td.firstChild ? td.firstChild.textContent.trim() : "",
        marked: td.classList.contains("evaldemo-differs") || td.classList.contains("evaldemo-zeroed"),
      })));
    ex.gridMismatches = [];
    if (grids.length === 2 && grids[0].length && grids[0].length === grids[1].length) {
      grids[0].forEach((cell, i) => {
        const other = grids[1][i];
        if (cell.value !== other.value && !(cell.marked && other.marked)) ex.gridMismatches.push(i);
        if (cell.value === other.value && cell.marked !== other.marked) ex.gridMismatches.push(i);
      });
    }
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
