"""Build, serve and pack the artifacts kubesmith installs (the lab mirror and offline bundles)."""
