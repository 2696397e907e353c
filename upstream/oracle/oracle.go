// Package oracle runs kube-scheduler's own scheduling code on cluster dumps, for comparing
// with `berth simulate`: one process reads a stream of dumps (one JSON request per line on
// stdin) and answers each with one line of decisions on stdout.
//
// Each dump gets a fresh scheduler (pkg/scheduler.New, the default in-tree registry, the given
// KubeSchedulerConfiguration) over a fake clientset holding the dump's objects, as
// kube-scheduler-simulator and cluster-capacity run the real plugins without an API server.
// Pending pods are taken one at a time in the profile's QueueSort order and each goes through
// the real ScheduleOne: snapshot, PreFilter, Filter, PostFilter (preemption), PreScore, Score,
// assume, Reserve, Permit. As in `berth simulate`, each pod is tried once; a pod that preempts
// has its victims deleted at once and is tried again on its nominated node.
package oracle

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/scheduler"
	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// attemptTimeout bounds one ScheduleOne (a hung binding goroutine would otherwise hang the
// stream); a cluster of the generator's size takes milliseconds.
const attemptTimeout = 60 * time.Second

type request struct {
	ID      string            `json:"id"`
	Objects []json.RawMessage `json:"objects"`
	// Config is a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1); empty means
	// kube-scheduler's defaults.
	Config json.RawMessage `json:"config"`
	// TieBreak names, per pod ("namespace/name"), the node to take when several nodes share
	// the best score: the one Berth took.
	TieBreak map[string]string `json:"tieBreak"`
}

// decision has the shape of `berth simulate -o json`'s lines, plus what only the oracle knows.
type decision struct {
	Pod           string                      `json:"pod"`
	Node          *string                     `json:"node"`
	Reasons       map[string][]string         `json:"reasons"`
	Scores        map[string]int64            `json:"scores"`
	Message       string                      `json:"message"`
	PluginScores  map[string]map[string]int64 `json:"pluginScores,omitempty"`
	NominatedNode string                      `json:"nominatedNode,omitempty"`
	Preempted     []string                    `json:"preempted,omitempty"`
	Gated         bool                        `json:"gated,omitempty"`
	Error         string                      `json:"error,omitempty"`
	// The nodes sharing the best total score (a tie is compared as this set).
	BestNodes []string `json:"bestNodes,omitempty"`
	// Invalid: the API server would not have stored this pod (Error says why).
	Invalid bool `json:"invalid,omitempty"`
}

type response struct {
	ID        string          `json:"id"`
	Decisions []decision      `json:"decisions"`
	Invalid   []invalidObject `json:"invalid"`
	// Coverage counts the plugin paths this dump reached, e.g. "Filter/NodeAffinity/
	// UnschedulableAndUnresolvable" once per node status.
	Coverage map[string]int `json:"coverage"`
	Error    string         `json:"error,omitempty"`
}

// Main is the `berth-upstream oracle` personality.
func Main(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "usage: berth-upstream oracle < requests.jsonl > decisions.jsonl")
		return 2
	}
	if err := setFeatureGates(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-upstream oracle:", err)
		return 1
	}
	// A panic in upstream's code on a worker goroutine (a plugin's Filter or Score under
	// workqueue.ParallelizeUntil) would end the process, racing the answer being written with
	// the panicked worker's missing result: it is recorded instead and the pod's decision says
	// so (see panicOf).
	utilruntime.ReallyCrash = false
	utilruntime.PanicHandlers = append(utilruntime.PanicHandlers, recordPanic)
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var req request
			var resp *response
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				resp = &response{Error: "request: " + jerr.Error()}
			} else {
				resp = runCluster(&req)
			}
			data, _ := json.Marshal(resp)
			out.Write(append(data, '\n'))
			out.Flush()
		}
		if err == io.EOF {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "berth-upstream oracle: reading stdin:", err)
			return 1
		}
	}
}

// setFeatureGates turns off the two defaults whose effect depends on wall-clock time or
// goroutine timing, not on the cluster: asynchronous preemption (the victims are the same;
// deleting them inline lets the retry see them gone) and opportunistic batching (a 500 ms
// cache of the previous pod's scores, an optimisation Berth does not make).
func setFeatureGates() error {
	return utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{
		string(features.SchedulerAsyncPreemption): false,
		string(features.OpportunisticBatching):    false,
	})
}

var (
	panicMu sync.Mutex
	panics  []string
)

// recordPanic is a utilruntime panic handler: it runs on the panicking goroutine, inside the
// deferred HandleCrash, so the first frame outside the runtime after runtime.gopanic is where
// the panic happened.
func recordPanic(_ context.Context, r any) {
	site := "?"
	pcs := make([]uintptr, 64)
	frames := goruntime.CallersFrames(pcs[:goruntime.Callers(1, pcs)])
	for afterPanic := false; ; {
		f, more := frames.Next()
		if afterPanic && !strings.HasPrefix(f.Function, "runtime.") {
			site = fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
			break
		}
		afterPanic = afterPanic || f.Function == "runtime.gopanic"
		if !more {
			break
		}
	}
	panicMu.Lock()
	defer panicMu.Unlock()
	panics = append(panics, fmt.Sprintf("%v in %s", r, site))
}

// takePanics returns and forgets the panics recorded so far.
func takePanics() []string {
	panicMu.Lock()
	defer panicMu.Unlock()
	out := panics
	panics = nil
	return out
}

// errWorkerLost is the status a Score pass gets when a worker left its node without a result
// (it panicked); panicOf then waits for the panic's record, which the worker writes after the
// framework has already seen it done.
var errWorkerLost = errors.New("oracle: a Score worker returned no result")

// panicOf is the panic an attempt met, as an oracle error, or "".
func panicOf(a *attempt) string {
	got := takePanics()
	a.mu.Lock()
	lost := a.failure != nil && strings.Contains(a.failure.Message(), errWorkerLost.Error())
	a.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); lost && len(got) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		got = takePanics()
	}
	if len(got) == 0 {
		if lost {
			return errWorkerLost.Error()
		}
		return ""
	}
	return "oracle: kube-scheduler panicked: " + strings.Join(got, "; ")
}

func loadConfig(raw json.RawMessage) (*schedulerapi.KubeSchedulerConfiguration, error) {
	data := []byte(raw)
	if len(strings.TrimSpace(string(data))) == 0 || string(data) == "null" {
		data = []byte(`{"apiVersion":"kubescheduler.config.k8s.io/v1","kind":"KubeSchedulerConfiguration"}`)
	}
	// As kube-scheduler's --config (cmd/kube-scheduler/app/options/configfile.go:42): decode
	// with defaulting into the internal type, then validate.
	obj, gvk, err := scheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	cfg, ok := obj.(*schedulerapi.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("couldn't decode as KubeSchedulerConfiguration, got %s", gvk)
	}
	cfg.TypeMeta.APIVersion = gvk.GroupVersion().String()
	if err := validation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// cluster is one dump under one scheduler.
type cluster struct {
	ctx      context.Context
	sched    *scheduler.Scheduler
	client   *fake.Clientset
	nodes    []string
	current  *attempt
	mu       sync.Mutex
	deleted  []types.NamespacedName
	tieBreak map[string]string
	coverage map[string]int
	uids     map[types.NamespacedName]types.UID
	// Resources an informer listed, and those whose watch is registered with the tracker.
	listed, watching map[schema.GroupVersionResource]bool
}

func runCluster(req *request) (resp *response) {
	resp = &response{ID: req.ID, Decisions: []decision{}, Invalid: []invalidObject{}, Coverage: map[string]int{}}
	takePanics() // a previous cluster's goroutines are not this one's
	defer func() {
		if r := recover(); r != nil {
			resp.Error = fmt.Sprintf("oracle panic: %v", r)
		}
	}()
	cfg, err := loadConfig(req.Config)
	if err != nil {
		resp.Error = "config: " + err.Error()
		return resp
	}
	data := loadObjects(req.Objects)
	resp.Invalid = data.invalid
	for _, bad := range data.invalid {
		resp.Coverage["Invalid/"+bad.Kind]++
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = klog.NewContext(ctx, logr.Discard())
	c := &cluster{ctx: ctx, tieBreak: req.TieBreak, coverage: resp.Coverage, current: newAttempt()}
	if err := c.start(data, cfg); err != nil {
		resp.Error = err.Error()
		return resp
	}
	for _, bad := range data.invalid {
		if _, ok := c.sched.Profiles[bad.pendingFor]; ok && bad.Kind == "Pod" {
			resp.Decisions = append(resp.Decisions, decision{
				Pod: bad.Namespace + "/" + bad.Name, Reasons: map[string][]string{}, Scores: map[string]int64{},
				Message: strings.Join(bad.Errors, "; "), Error: strings.Join(bad.Errors, "; "), Invalid: true,
			})
		}
	}
	for _, qpi := range c.queue(data.pods) {
		resp.Decisions = append(resp.Decisions, c.decide(qpi))
	}
	return resp
}

func (c *cluster) start(data *loaded, cfg *schedulerapi.KubeSchedulerConfiguration) error {
	var objects []runtime.Object
	for _, obj := range data.objects {
		if p, ok := obj.(*v1.Pod); ok && (p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed) {
			// kube-scheduler's pod informer lists with status.phase!=Succeeded,Failed
			// (pkg/scheduler/scheduler.go:654); the fake clientset ignores field selectors.
			continue
		}
		objects = append(objects, obj)
	}
	for _, n := range data.nodes {
		c.nodes = append(c.nodes, n.Name)
	}
	c.uids = map[types.NamespacedName]types.UID{}
	for _, p := range data.pods {
		c.uids[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p.UID
	}
	c.client = fake.NewClientset(objects...)
	c.listed, c.watching = map[schema.GroupVersionResource]bool{}, map[schema.GroupVersionResource]bool{}
	c.client.PrependReactor("list", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.listed[action.GetResource()] = true
		c.mu.Unlock()
		return false, nil, nil
	})
	// The tracker delivers to a watch only what happens after it is registered, and replays
	// additions since the list but not deletions: a victim deleted before the pod informer's
	// watch is in place would stay in the scheduler's cache for good. The watch is registered
	// here, as the fake's own reactor does, and recorded once it is, so waitHandlers can wait
	// for every informer's.
	c.client.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if wa, ok := action.(k8stesting.WatchActionImpl); ok {
			opts = wa.ListOptions
		}
		w, err := c.client.Tracker().Watch(action.GetResource(), action.GetNamespace(), opts)
		if err != nil {
			return true, nil, err
		}
		c.mu.Lock()
		c.watching[action.GetResource()] = true
		c.mu.Unlock()
		return true, w, nil
	})
	c.client.PrependReactor("delete", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		del := action.(k8stesting.DeleteAction)
		c.mu.Lock()
		c.deleted = append(c.deleted, types.NamespacedName{Namespace: del.GetNamespace(), Name: del.GetName()})
		c.mu.Unlock()
		return false, nil, nil
	})
	informerFactory := scheduler.NewInformerFactory(c.client, 0, nil)
	recorder := func(string) events.EventRecorderLogger { return &events.FakeRecorder{} }
	sched, err := scheduler.New(c.ctx, c.client, informerFactory, nil, recorder,
		scheduler.WithProfiles(cfg.Profiles...),
		scheduler.WithPercentageOfNodesToScore(cfg.PercentageOfNodesToScore),
		// One worker: findNodesThatPassFilters then stops at exactly the same node every run.
		scheduler.WithParallelism(1),
		scheduler.WithPodInitialBackoffSeconds(cfg.PodInitialBackoffSeconds),
		scheduler.WithPodMaxBackoffSeconds(cfg.PodMaxBackoffSeconds),
	)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	c.sched = sched
	informerFactory.Start(c.ctx.Done())
	informerFactory.WaitForCacheSync(c.ctx.Done())
	if err := c.waitHandlers(); err != nil {
		return err
	}
	for name, f := range sched.Profiles {
		sched.Profiles[name] = &recordingFramework{
			Framework: f,
			current:   func() *attempt { return c.current },
			tieBreak:  func(p *v1.Pod) string { return c.tieBreak[p.Namespace+"/"+p.Name] },
		}
	}
	sched.FailureHandler = c.failed
	return nil
}

// waitHandlers waits until every event handler has seen the initial objects. The scheduler's
// own WaitForHandlersSync polls every 100 ms; called with a cancelled context it checks once.
func (c *cluster) waitHandlers() error {
	done, cancel := context.WithCancel(c.ctx)
	cancel()
	deadline := time.Now().Add(attemptTimeout)
	for c.sched.WaitForHandlersSync(done) != nil {
		if time.Now().After(deadline) {
			return errors.New("event handlers did not sync")
		}
		time.Sleep(50 * time.Microsecond)
	}
	for !c.allWatched() {
		if time.Now().After(deadline) {
			return errors.New("informers listed without watching")
		}
		time.Sleep(50 * time.Microsecond)
	}
	// The volume binder's and DRA's assume caches have handlers of their own on the same
	// informers, delivered by their own goroutines; give them the moment they need.
	time.Sleep(time.Millisecond)
	return nil
}

// allWatched: every resource an informer listed has its watch registered.
func (c *cluster) allWatched() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for gvr := range c.listed {
		if !c.watching[gvr] {
			return false
		}
	}
	return true
}

// failed is the scheduler's FailureHandler: it records the outcome and keeps the nomination
// in memory, which is what upstream's handleSchedulingFailure does at once for the next cycle
// (schedule_one.go:1232); requeueing and the status write do not apply to a single pass.
func (c *cluster) failed(ctx context.Context, f framework.Framework, podInfo *framework.QueuedPodInfo, status *fwk.Status, nominating *fwk.NominatingInfo, _ time.Time) {
	a := c.current
	a.mu.Lock()
	a.failure, a.nominating = status, nominating
	a.mu.Unlock()
	c.sched.SchedulingQueue.AddNominatedPod(klog.FromContext(ctx), podInfo.PodInfo, nominating)
	a.finish()
}

// queue returns this scheduler's pending pods in the order of the first profile's QueueSort
// (as the scheduling queue, pkg/scheduler/scheduler.go:433), each queued at its creation time.
func (c *cluster) queue(pods []*v1.Pod) []*framework.QueuedPodInfo {
	var out []*framework.QueuedPodInfo
	for _, p := range pods {
		if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		if _, ok := c.sched.Profiles[p.Spec.SchedulerName]; !ok {
			continue
		}
		info, err := framework.NewPodInfo(p.DeepCopy())
		if err != nil {
			continue
		}
		qpi := &framework.QueuedPodInfo{PodInfo: info}
		qpi.Timestamp = p.CreationTimestamp.Time
		out = append(out, qpi)
	}
	sort.SliceStable(out, func(i, j int) bool { return podKey(out[i].Pod) < podKey(out[j].Pod) })
	var less fwk.LessFunc
	for _, f := range c.sched.Profiles {
		less = f.QueueSortFunc() // every profile has the same QueueSort (validated)
		break
	}
	sort.SliceStable(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func podKey(p *v1.Pod) string { return p.Namespace + "/" + p.Name }

// decide schedules one pod: PreEnqueue, then ScheduleOne; after a preemption, the victims are
// gone and the pod is tried again on its nominated node.
func (c *cluster) decide(qpi *framework.QueuedPodInfo) decision {
	pod := qpi.Pod
	d := decision{Pod: podKey(pod), Reasons: map[string][]string{}, Scores: map[string]int64{}}
	f := c.sched.Profiles[pod.Spec.SchedulerName]
	for _, pl := range f.PreEnqueuePlugins() {
		// As the queue's runPreEnqueuePlugins: the first plugin that does not admit the pod
		// keeps it out of the active queue; it is never tried.
		if status := pl.PreEnqueue(c.ctx, pod); !status.IsSuccess() {
			c.coverage["PreEnqueue/"+pl.Name()+"/"+status.Code().String()]++
			d.Gated = true
			d.Message = pl.Name() + ": " + status.Message()
			return d
		}
	}
	a, err := c.attempt(qpi)
	if err != nil {
		d.Error, d.Message = err.Error(), err.Error()
		return d
	}
	if p := panicOf(a); p != "" {
		d.Error, d.Message = p, p
		return d
	}
	if a.failure != nil && a.nominating != nil && a.nominating.Mode() == fwk.ModeOverride && a.nominating.NominatedNodeName != "" {
		victims := c.takeDeleted()
		if err := c.waitGone(victims); err != nil {
			d.Error, d.Message = err.Error(), err.Error()
			return d
		}
		d.NominatedNode = a.nominating.NominatedNodeName
		for _, v := range victims {
			d.Preempted = append(d.Preempted, v.String())
		}
		sort.Strings(d.Preempted)
		retry := qpi.DeepCopy()
		retry.Pod.Status.NominatedNodeName = d.NominatedNode
		if a, err = c.attempt(retry); err != nil {
			d.Error, d.Message = err.Error(), err.Error()
			return d
		}
		if p := panicOf(a); p != "" {
			d.Error, d.Message = p, p
			return d
		}
	}
	c.takeDeleted()
	c.describe(&d, a, f, pod.Status.NominatedNodeName)
	return d
}

func (c *cluster) attempt(qpi *framework.QueuedPodInfo) (*attempt, error) {
	a := newAttempt()
	c.current = a
	qpi.Attempts++
	now := time.Now()
	qpi.InitialAttemptTimestamp = &now
	c.sched.NextEntity = func(klog.Logger) (framework.QueuedEntityInfo, error) { return qpi, nil }
	c.sched.ScheduleOne(c.ctx)
	select {
	case <-a.finished:
		return a, nil
	case <-time.After(attemptTimeout):
		return nil, fmt.Errorf("oracle: scheduling %s did not finish within %s", podKey(qpi.Pod), attemptTimeout)
	}
}

func (c *cluster) takeDeleted() []types.NamespacedName {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.deleted
	c.deleted = nil
	return out
}

// waitGone waits until the scheduler's cache no longer holds the deleted pods (their delete
// events travel through the pod informer).
func (c *cluster) waitGone(victims []types.NamespacedName) error {
	deadline := time.Now().Add(attemptTimeout)
	for _, v := range victims {
		probe := &v1.Pod{}
		probe.Namespace, probe.Name = v.Namespace, v.Name
		probe.UID = c.uids[v]
		for {
			if _, err := c.sched.Cache.GetPod(probe); err != nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("oracle: victim %s still in the scheduler's cache", v)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
}

// describe fills the decision from the attempt that decided it.
func (c *cluster) describe(d *decision, a *attempt, f framework.Framework, nominated string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.countPaths(a)
	if a.failure == nil {
		node := a.reservedNode
		d.Node = &node
		c.coverage["Scheduled"]++
		if d.NominatedNode != "" {
			nominated = d.NominatedNode
		}
		c.successReasons(d, a, node, nominated)
		c.scores(d, a, f)
		return
	}
	status := a.failure
	d.Message = status.Message()
	var fitErr *framework.FitError
	if errors.As(status.AsError(), &fitErr) {
		explicit := sets.New[string]()
		fitErr.Diagnosis.NodeToStatus.ForEachExplicitNode(func(name string, s *fwk.Status) {
			explicit.Insert(name)
			d.Reasons[name] = reasonsOf(s)
			c.coverage["Filter/"+pluginOf(s)+"/"+s.Code().String()]++
		})
		absent := fitErr.Diagnosis.NodeToStatus.AbsentNodesStatus()
		if len(absent.Reasons()) > 0 {
			for _, name := range c.nodes {
				if !explicit.Has(name) {
					d.Reasons[name] = reasonsOf(absent)
					c.coverage["Filter/"+pluginOf(absent)+"/"+absent.Code().String()]++
				}
			}
		}
		c.coverage["Unschedulable"]++
		return
	}
	if status.Code() == fwk.Error {
		d.Error = status.Message()
		c.coverage["Error/"+pluginOf(status)]++
		return
	}
	c.coverage["Failed/"+pluginOf(status)+"/"+status.Code().String()]++
}

// successReasons are the nodes a scheduled pod's cycle rejected: the upstream Diagnosis of a
// successful cycle is not returned, so it is rebuilt from the recorded Filter calls and the
// PreFilterResult, as findNodesThatFitPod builds it (schedule_one.go:680-686).
func (c *cluster) successReasons(d *decision, a *attempt, node, nominated string) {
	for name, s := range a.filtered {
		d.Reasons[name] = reasonsOf(s)
		c.coverage["Filter/"+pluginOf(s)+"/"+s.Code().String()]++
	}
	if a.preFilterResult.AllNodes() {
		return
	}
	if nominated != "" && node == nominated && a.filterCalls <= 1 && len(a.filtered) == 0 {
		return // the nominated node passed and was taken before the full pass (:666)
	}
	msg := fmt.Sprintf("node(s) didn't satisfy plugin(s) %v", sets.List(a.preFilterPlugins))
	absent := fwk.NewStatus(fwk.UnschedulableAndUnresolvable, msg)
	for _, name := range c.nodes {
		if !a.preFilterResult.NodeNames.Has(name) {
			if _, rejected := a.filtered[name]; !rejected {
				d.Reasons[name] = reasonsOf(absent)
				c.coverage["Filter/PreFilterResult/"+absent.Code().String()]++
			}
		}
	}
}

// scores reports each plugin's normalised score (the framework returns them weighted) and the
// totals, when the pod was scored at all (a single feasible node is not, schedule_one.go:596).
func (c *cluster) scores(d *decision, a *attempt, f framework.Framework) {
	if a.scores == nil {
		return
	}
	weights := map[string]int64{}
	for _, p := range f.ListPlugins().Score.Enabled {
		weights[p.Name] = int64(p.Weight)
	}
	d.PluginScores = map[string]map[string]int64{}
	best := int64(-1 << 62)
	for _, ns := range a.scores {
		d.Scores[ns.Name] = ns.TotalScore
		if ns.TotalScore > best {
			best = ns.TotalScore
		}
		for _, ps := range ns.Scores {
			w := weights[ps.Name]
			if w == 0 {
				w = 1
			}
			if d.PluginScores[ps.Name] == nil {
				d.PluginScores[ps.Name] = map[string]int64{}
			}
			d.PluginScores[ps.Name][ns.Name] = ps.Score / w
		}
	}
	for _, ns := range a.scores {
		if ns.TotalScore == best {
			d.BestNodes = append(d.BestNodes, ns.Name)
		}
	}
	sort.Strings(d.BestNodes)
	for plugin, byNode := range d.PluginScores {
		c.coverage["Score/"+plugin+"/scored"]++
		values := sets.New[int64]()
		for _, s := range byNode {
			values.Insert(s)
		}
		if values.Len() > 1 {
			c.coverage["Score/"+plugin+"/varied"]++
		}
	}
}

// countPaths counts the extension-point outcomes of one attempt for the coverage table.
func (c *cluster) countPaths(a *attempt) {
	if s := a.preFilterStatus; s != nil && !s.IsSuccess() {
		c.coverage["PreFilter/"+pluginOf(s)+"/"+s.Code().String()]++
	}
	if a.preFilterResult != nil && !a.preFilterResult.AllNodes() {
		for p := range a.preFilterPlugins {
			c.coverage["PreFilter/"+p+"/NodeNames"]++
		}
	}
	for p := range a.skipFilter {
		c.coverage["PreFilter/"+p+"/Skip"]++
	}
	for p := range a.skipScore {
		c.coverage["PreScore/"+p+"/Skip"]++
	}
	if s := a.postFilter; s != nil {
		key := "PostFilter/" + pluginOf(s) + "/" + s.Code().String()
		if s.IsSuccess() {
			key = "PostFilter/" + pluginOf(s) + "/Nominated"
		}
		c.coverage[key]++
	}
	if s := a.reserve; s != nil && !s.IsSuccess() {
		c.coverage["Reserve/"+pluginOf(s)+"/"+s.Code().String()]++
	}
	if s := a.permit; s != nil && !s.IsSuccess() {
		c.coverage["Permit/"+pluginOf(s)+"/"+s.Code().String()]++
	}
}

func reasonsOf(s *fwk.Status) []string {
	out := append([]string{}, s.Reasons()...)
	if len(out) == 0 && s.AsError() != nil {
		out = append(out, s.AsError().Error())
	}
	return out
}

func pluginOf(s *fwk.Status) string {
	if p := s.Plugin(); p != "" {
		return p
	}
	return "-"
}
