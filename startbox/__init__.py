"""startbox: the root of the `startbox` command; each package brings its own sub-app."""
