// Command promrelabel loads a Prometheus configuration with Prometheus' own loader (so unknown
// or misspelt fields fail, as they fail in Prometheus) and applies one scrape job's
// relabel_configs to a discovered target given as NAME=VALUE arguments, printing the labels
// Prometheus would scrape the target with, one NAME=VALUE a line (nothing if it is dropped).
//
//	promrelabel prometheus.yml JOB __address__=10.0.0.7:10250 __meta_kubernetes_node_name=w1
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: promrelabel CONFIG JOB [NAME=VALUE...]")
		os.Exit(2)
	}
	cfg, err := config.LoadFile(os.Args[1], false, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var job *config.ScrapeConfig
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == os.Args[2] {
			job = sc
		}
	}
	if job == nil {
		fmt.Fprintf(os.Stderr, "no scrape job %q\n", os.Args[2])
		os.Exit(1)
	}
	b := labels.NewBuilder(labels.EmptyLabels())
	for _, arg := range os.Args[3:] {
		name, value, _ := strings.Cut(arg, "=")
		b.Set(name, value)
	}
	if !relabel.ProcessBuilder(b, job.RelabelConfigs...) {
		return
	}
	b.Labels().Range(func(l labels.Label) { fmt.Printf("%s=%s\n", l.Name, l.Value) })
}
