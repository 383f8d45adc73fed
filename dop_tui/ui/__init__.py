"""The Textual workbench (imports textual; nothing outside dop_tui.ui does)."""
