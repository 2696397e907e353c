//go:build gotimeextract

// Records how the API server's time types decode and re-encode a set of strings: for each,
// metav1.Time's and metav1.MicroTime's UnmarshalJSON error (Go's time.Parse error) or the value
// MarshalJSON writes back. Berth's embedded cluster is tested against this file
// (tests/cluster/data/gotime_cases.json). Run by gen_cases.sh.
package gotime

import (
	"encoding/json"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var values = []string{
	"2026-01-02T03:04:05Z",
	"2026-01-02T03:04:05.000000Z",
	"2026-01-02T03:04:05.123456Z",
	"2026-01-02T03:04:05.5Z",
	"2026-01-02T03:04:05.1234567Z",
	"2026-01-02T03:04:05.123456789Z",
	"2026-01-02T03:04:05,123456Z",
	"2026-01-02T03:04:05.123456+01:00",
	"2026-01-02T03:04:05+01:00",
	"2026-01-02T03:04:05-07:30",
	"2026-01-02T03:04:05.123456-00:00",
	"2026-01-02T03:04:05+24:00",
	"2026-01-02T03:04:05+25:00",
	"2026-01-02T03:04:05+01:61",
	"2026-01-02T03:04:05+0100",
	"2026-01-02T03:04:05 +01:00",
	"2026-01-02T03:04:05",
	"2026-01-02T03:04:05.123456",
	"2026-01-02T3:04:05Z",
	"2026-01-02T03:4:05Z",
	"2026-01-02T03:04:5Z",
	"2026-1-02T03:04:05Z",
	"2026-01-2T03:04:05Z",
	"26-01-02T03:04:05Z",
	"20260-01-02T03:04:05Z",
	"2026-01-02 03:04:05Z",
	"2026-01-02t03:04:05Z",
	"2026-01-02T03:04:05z",
	"2026-01-02T03:04:05ZZ",
	"2026-01-02T03:04:05Z07:00",
	"2026-13-02T03:04:05Z",
	"2026-00-02T03:04:05Z",
	"2026-01-00T03:04:05Z",
	"2026-01-32T03:04:05Z",
	"2026-02-29T03:04:05Z",
	"2024-02-29T03:04:05Z",
	"2026-04-31T03:04:05Z",
	"2026-01-02T24:00:00Z",
	"2026-01-02T23:60:00Z",
	"2026-01-02T23:59:60Z",
	"2026-01-02T03:04:05.Z",
	"2026-01-02T03:04:05.-12345Z",
	"2026-01-02T03:04:05.+12345Z",
	"2026-01-02T03:04:05.12a456Z",
	"0000-01-01T00:00:00Z",
	"0001-01-01T00:00:00Z",
	"9999-12-31T23:59:59.999999Z",
	"",
	"now",
	"2026",
	"2026-01-02",
	"2026-01-02T",
	"2026-01-02T03:04",
	"2026-01-02T03:04:05.123456+01",
	"2026-01-02T03:04:05.123456+01:0",
	"2026-01-02T03:04:05\"Z",
	"2026-01-02T03:04:05Zé",
}

type recorded struct {
	Type    string `json:"type"`
	Value   string `json:"value"`
	Error   string `json:"error,omitempty"`
	Encoded string `json:"encoded,omitempty"`
}

func TestRecordTimeCases(t *testing.T) {
	var out []recorded
	for _, v := range values {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.Time
		r := recorded{Type: "Time", Value: v}
		if err := tm.UnmarshalJSON(raw); err != nil {
			r.Error = err.Error()
		} else {
			enc, _ := tm.MarshalJSON()
			_ = json.Unmarshal(enc, &r.Encoded)
		}
		out = append(out, r)
		var mt metav1.MicroTime
		r = recorded{Type: "MicroTime", Value: v}
		if err := mt.UnmarshalJSON(raw); err != nil {
			r.Error = err.Error()
		} else {
			enc, _ := mt.MarshalJSON()
			_ = json.Unmarshal(enc, &r.Encoded)
		}
		out = append(out, r)
	}
	data, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("BERTH_GOTIME_CASES"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
