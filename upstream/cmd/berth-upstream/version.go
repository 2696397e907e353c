package main

import (
	"fmt"
	"runtime/debug"
)

// versionLine names the linked Kubernetes and etcd modules, so a caller can check that a cached
// binary is the pinned one without running a component.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	versions := map[string]string{}
	for _, dep := range info.Deps {
		version := dep.Version
		if dep.Replace != nil {
			version = dep.Replace.Version
		}
		versions[dep.Path] = version
	}
	return fmt.Sprintf("kubernetes %s etcd %s go %s",
		versions["k8s.io/kubernetes"], versions["go.etcd.io/etcd/server/v3"], info.GoVersion)
}
