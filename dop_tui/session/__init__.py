"""Sessions: what was measured where, stored atomically, readable by every command and the workbench."""
