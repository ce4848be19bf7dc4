module kubesmith.local/build/pause

go 1.26
