"""kubesmith: production Kubernetes from upstream binaries, with Ansible."""
