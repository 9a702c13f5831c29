// The pod sandbox's process, as registry.k8s.io/pause: it holds the pod's namespaces, exits 0 on
// SIGINT or SIGTERM, and reaps orphans when it is the pod's PID 1. Built by test/env/images.ts
// into the local stack's own pause image (no registry to pull one from).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
