// Command etcd is etcd's own entry point, compiled in a module of kubesmith's that requires
// go.etcd.io/etcd/server/v3: etcd's root module (whose main.go does exactly this) is not
// published on the Go module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
