// Command berth-upstream is one binary with the personalities of the real control plane:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, plus the oracle that runs
// kube-scheduler's scheduling code on cluster dumps (package oracle) and a client-go writer of
// resource.k8s.io objects in protobuf (package protoclient). Linking them once saves
// build time and disk; each still runs as its own OS process (the first argument picks it),
// so a benchmark reads one component's CPU from /proc.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones, as in upstream's own mains

	"berth/upstream/oracle"
	"berth/upstream/protoclient"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream's mains
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream's mains
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream's mains
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// cobraPersonalities are upstream's own commands, run exactly as their mains run them.
var cobraPersonalities = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func usage() {
	names := []string{"etcd", "oracle", "protoclient", "version"}
	for name := range cobraPersonalities {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: berth-upstream %s [flags...]\n", strings.Join(names, "|"))
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	// Each component sees itself as its own binary: client-go's default user agent (and so the
	// field manager of every write, as in managedFields) comes from os.Args[0].
	os.Args = append([]string{name}, os.Args[2:]...)
	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
		return
	case "version":
		fmt.Println(versionLine())
		return
	case "oracle":
		os.Exit(oracle.Main(os.Args[1:]))
	case "protoclient":
		os.Exit(protoclient.Main(os.Args[1:]))
	}
	newCommand, ok := cobraPersonalities[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "berth-upstream: unknown personality %q\n", name)
		usage()
		os.Exit(2)
	}
	command := newCommand()
	command.SetArgs(os.Args[1:])
	os.Exit(cli.Run(command))
}
