"""The build benchmark as a package: corpus, flavours, builds, scenarios, report, command line."""
