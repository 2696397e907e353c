//go:build tools

// Package tools pins the typed API whose CRD schema controller-gen generates
// (github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1: ServiceMonitor).
package tools

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
