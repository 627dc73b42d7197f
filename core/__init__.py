"""The leaf room: types every other room may use and that import nothing of the project."""
