//go:build draextract

// Records upstream's structured-allocator test table (allocatortesting.TestAllocator) as JSON:
// every row's inputs and what the real "incubating" allocator (kube-scheduler 1.37's default)
// answered, for rows that pass upstream's own assertions. Berth's Python allocator is tested
// against this file (tests/dra/data/allocator_cases.json). Run by gen_allocator_cases.sh, which
// copies this file into a copy of k8s.io/dynamic-resource-allocation/structured.
package structured

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apitypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/dynamic-resource-allocation/structured/internal"
	"k8s.io/dynamic-resource-allocation/structured/internal/allocatortesting"
	"k8s.io/dynamic-resource-allocation/structured/internal/incubating"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

type recordedCase struct {
	Name             string                         `json:"name"`
	Features         []string                       `json:"features"`
	Classes          []*resourceapi.DeviceClass     `json:"classes"`
	Slices           []*resourceapi.ResourceSlice   `json:"slices"`
	AllocatedDevices []string                       `json:"allocatedDevices"`
	SharedAllocated  int                            `json:"sharedAllocated"`
	// allocated claims' shares of devices (consumable capacity): the shared device IDs
	// (driver/pool/device/shareID) and the capacity they consume per device
	SharedDeviceIDs    []string                                 `json:"sharedDeviceIDs"`
	AggregatedCapacity map[string]map[string]resource.Quantity `json:"aggregatedCapacity"`
	Node             *v1.Node                       `json:"node"`
	Claims           []*resourceapi.ResourceClaim   `json:"claims"`
	Results          []resourceapi.AllocationResult `json:"results"`
	Error            string                         `json:"error"`
	Failed           bool                           `json:"-"`
}

var fixedShareID = apitypes.UID("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa")

type recordingAllocator struct {
	inner internal.Allocator
	rec   *recordedCase
}

func (r recordingAllocator) Allocate(ctx context.Context, node *v1.Node, claims []*resourceapi.ResourceClaim) ([]resourceapi.AllocationResult, error) {
	results, err := r.inner.Allocate(ctx, node, claims)
	r.rec.Node = node
	for _, c := range claims {
		r.rec.Claims = append(r.rec.Claims, c.DeepCopy())
	}
	for _, res := range results {
		res := *res.DeepCopy()
		// a share ID is a random UUID: recorded as the one upstream's test compares with
		for i := range res.Devices.Results {
			if res.Devices.Results[i].ShareID != nil {
				res.Devices.Results[i].ShareID = &fixedShareID
			}
		}
		r.rec.Results = append(r.rec.Results, res)
	}
	if err != nil {
		r.rec.Error = err.Error()
	}
	return results, err
}

func (r recordingAllocator) Channel() internal.AllocatorChannel { return r.inner.Channel() }

func (r recordingAllocator) GetStats() internal.Stats {
	return r.inner.(internal.AllocatorExtended).GetStats()
}

func TestRecordAllocatorCases(t *testing.T) {
	var mu sync.Mutex
	var cases []*recordedCase
	allocatortesting.TestAllocator(t, incubating.SupportedFeatures,
		func(ctx context.Context, features incubating.Features, allocatedState internal.AllocatedState, classLister internal.DeviceClassLister, slices []*resourceapi.ResourceSlice, celCache *cel.Cache) (internal.Allocator, error) {
			sub := klog.FromContext(ctx).GetSink().(ktesting.Underlier).GetUnderlying().(*testing.T)
			rec := &recordedCase{Name: sub.Name(), Features: sets.List(features.Set())}
			classes, _ := classLister.List()
			for _, c := range classes {
				rec.Classes = append(rec.Classes, c.DeepCopy())
			}
			for _, s := range slices {
				rec.Slices = append(rec.Slices, s.DeepCopy())
			}
			for id := range allocatedState.AllocatedDevices {
				rec.AllocatedDevices = append(rec.AllocatedDevices, id.String())
			}
			sort.Strings(rec.AllocatedDevices)
			rec.SharedAllocated = len(allocatedState.AllocatedSharedDeviceIDs) + len(allocatedState.AggregatedCapacity)
			for id := range allocatedState.AllocatedSharedDeviceIDs {
				rec.SharedDeviceIDs = append(rec.SharedDeviceIDs, id.String())
			}
			sort.Strings(rec.SharedDeviceIDs)
			for id, consumed := range allocatedState.AggregatedCapacity {
				if rec.AggregatedCapacity == nil {
					rec.AggregatedCapacity = map[string]map[string]resource.Quantity{}
				}
				out := map[string]resource.Quantity{}
				for name, q := range consumed {
					out[string(name)] = q.DeepCopy()
				}
				rec.AggregatedCapacity[id.String()] = out
			}
			sub.Cleanup(func() {
				if !sub.Failed() && !sub.Skipped() {
					mu.Lock()
					cases = append(cases, rec)
					mu.Unlock()
				}
			})
			inner, err := incubating.NewAllocator(ctx, features, allocatedState, classLister, slices, celCache)
			if err != nil {
				return nil, err
			}
			return recordingAllocator{inner: inner, rec: rec}, nil
		})
	t.Cleanup(func() {
		sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
		out, err := json.MarshalIndent(cases, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(os.Getenv("BERTH_DRA_CASES"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}
