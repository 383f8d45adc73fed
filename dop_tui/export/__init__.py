"""A tuned session becomes a kernel package: ``dop_tui.export.package.export_package``."""
