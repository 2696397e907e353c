package oracle

// What one scheduling attempt did, seen from outside the real framework: the profile's
// framework is wrapped so that every call schedule_one.go makes on it is recorded on its way
// through (the plugins themselves, and preemption's own calls, reach the real framework
// directly). The binding cycle is not run: offline nothing binds, and the assumed pod is what
// later pods see, as in `berth simulate`.

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// attempt is the record of one ScheduleOne.
type attempt struct {
	mu sync.Mutex

	preFilterResult  *fwk.PreFilterResult
	preFilterStatus  *fwk.Status
	preFilterPlugins sets.Set[string]
	skipFilter       sets.Set[string]
	skipScore        sets.Set[string]
	filterCalls      int
	filtered         map[string]*fwk.Status // rejected nodes, in the order they were checked
	order            []string
	scores           []fwk.NodePluginScores // as the framework returned them (weighted)
	postFilter       *fwk.Status
	reservedNode     string
	reserve          *fwk.Status
	permit           *fwk.Status
	failure          *fwk.Status
	nominating       *fwk.NominatingInfo
	finished         chan struct{}
}

func newAttempt() *attempt {
	return &attempt{filtered: map[string]*fwk.Status{}, finished: make(chan struct{}, 1)}
}

func (a *attempt) finish() {
	select {
	case a.finished <- struct{}{}:
	default:
	}
}

// recordingFramework is the profile's framework with each call of the scheduling algorithm
// recorded. tieBreak names the node to prefer among equally scored best nodes: the one
// Berth picked, so both continue from the same cluster (upstream breaks ties by heap order).
type recordingFramework struct {
	framework.Framework
	current  func() *attempt
	tieBreak func(pod *v1.Pod) string
}

func (f *recordingFramework) RunPreFilterPlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod) (*fwk.PreFilterResult, *fwk.Status, sets.Set[string]) {
	res, status, plugins := f.Framework.RunPreFilterPlugins(ctx, state, pod)
	a := f.current()
	a.mu.Lock()
	// A copy: the framework hands the same set to Diagnosis.UnschedulablePlugins, which the
	// Filter failures then extend, while the absent nodes' message is built before them.
	a.preFilterResult, a.preFilterStatus, a.preFilterPlugins = res, status, plugins.Clone()
	a.skipFilter = state.GetSkipFilterPlugins().Clone()
	a.mu.Unlock()
	return res, status, plugins
}

func (f *recordingFramework) RunFilterPluginsWithNominatedPods(ctx context.Context, state fwk.CycleState, pod *v1.Pod, info fwk.NodeInfo) *fwk.Status {
	status := f.Framework.RunFilterPluginsWithNominatedPods(ctx, state, pod, info)
	a := f.current()
	a.mu.Lock()
	a.filterCalls++
	name := info.Node().Name
	if status.IsSuccess() {
		delete(a.filtered, name)
	} else {
		if _, seen := a.filtered[name]; !seen {
			a.order = append(a.order, name)
		}
		a.filtered[name] = status
	}
	a.mu.Unlock()
	return status
}

func (f *recordingFramework) RunPreScorePlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	status := f.Framework.RunPreScorePlugins(ctx, state, pod, nodes)
	a := f.current()
	a.mu.Lock()
	a.skipScore = state.GetSkipScorePlugins().Clone()
	a.mu.Unlock()
	return status
}

func (f *recordingFramework) RunScorePlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) ([]fwk.NodePluginScores, *fwk.Status) {
	scores, status := f.Framework.RunScorePlugins(ctx, state, pod, nodes)
	if !status.IsSuccess() {
		return scores, status
	}
	for _, s := range scores {
		if s.Name == "" { // a worker that panicked leaves its node's entry empty
			return nil, fwk.AsStatus(errWorkerLost)
		}
	}
	a := f.current()
	a.mu.Lock()
	a.scores = make([]fwk.NodePluginScores, len(scores))
	for i, s := range scores {
		a.scores[i] = fwk.NodePluginScores{Name: s.Name, TotalScore: s.TotalScore, Scores: append([]fwk.PluginScore(nil), s.Scores...)}
	}
	a.mu.Unlock()
	// Randomizer is the heap's tie-breaker (framework/sorted_nodes.go:63); only equal totals
	// consult it, so this decides between best nodes and nothing else.
	if hint := f.tieBreak(pod); hint != "" {
		for i := range scores {
			if scores[i].Name == hint {
				scores[i].Randomizer = 1
			}
		}
	}
	return scores, status
}

func (f *recordingFramework) RunPostFilterPlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod, m fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	res, status := f.Framework.RunPostFilterPlugins(ctx, state, pod, m)
	a := f.current()
	a.mu.Lock()
	a.postFilter = status
	a.mu.Unlock()
	return res, status
}

func (f *recordingFramework) RunReservePluginsReserve(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	status := f.Framework.RunReservePluginsReserve(ctx, state, pod, nodeName)
	a := f.current()
	a.mu.Lock()
	a.reservedNode, a.reserve = nodeName, status
	a.mu.Unlock()
	return status
}

func (f *recordingFramework) RunPermitPlugins(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) (map[string]time.Duration, *fwk.Status) {
	waits, status := f.Framework.RunPermitPlugins(ctx, state, pod, nodeName)
	a := f.current()
	a.mu.Lock()
	a.permit = status
	a.mu.Unlock()
	return waits, status
}

// The binding cycle binds in memory: the pod stays assumed in the scheduler's cache, which is
// what every later decision reads. Skip from the pre-flight keeps the nominated-node write
// (an API call) from happening (schedule_one.go:414).
func (f *recordingFramework) RunPreBindPreFlights(context.Context, fwk.CycleState, *v1.Pod, string) *fwk.Status {
	return fwk.NewStatus(fwk.Skip)
}

func (f *recordingFramework) RunPreBindPlugins(context.Context, fwk.CycleState, *v1.Pod, string) *fwk.Status {
	return nil
}

func (f *recordingFramework) RunBindPlugins(context.Context, fwk.CycleState, *v1.Pod, string) *fwk.Status {
	return nil
}

func (f *recordingFramework) RunPostBindPlugins(context.Context, fwk.CycleState, *v1.Pod, string) {
	f.current().finish()
}
