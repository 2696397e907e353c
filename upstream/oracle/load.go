package oracle

// Loading a dump the way kube-apiserver would have stored it: each object decoded, defaulted
// and validated by the API server's own code (the registry strategies' create validation), and
// pods given their priority as the Priority admission plugin would. Objects the API server
// would refuse are reported and not loaded.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	_ "k8s.io/kubernetes/pkg/apis/resource/install"
	"k8s.io/kubernetes/pkg/apis/scheduling"
	_ "k8s.io/kubernetes/pkg/apis/scheduling/install"
	_ "k8s.io/kubernetes/pkg/apis/storage/install"
	"k8s.io/kubernetes/pkg/registry/apps/replicaset"
	"k8s.io/kubernetes/pkg/registry/apps/statefulset"
	"k8s.io/kubernetes/pkg/registry/core/namespace"
	"k8s.io/kubernetes/pkg/registry/core/node"
	"k8s.io/kubernetes/pkg/registry/core/persistentvolume"
	"k8s.io/kubernetes/pkg/registry/core/persistentvolumeclaim"
	"k8s.io/kubernetes/pkg/registry/core/pod"
	"k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/policy/poddisruptionbudget"
	"k8s.io/kubernetes/pkg/registry/resource/deviceclass"
	"k8s.io/kubernetes/pkg/registry/resource/resourceclaim"
	"k8s.io/kubernetes/pkg/registry/resource/resourceslice"
	"k8s.io/kubernetes/pkg/registry/scheduling/priorityclass"
	"k8s.io/kubernetes/pkg/registry/storage/csinode"
	"k8s.io/kubernetes/pkg/registry/storage/storageclass"
)

// invalidObject is one object the API server would not have stored, and why.
type invalidObject struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace,omitempty"`
	Name      string   `json:"name"`
	Errors    []string `json:"errors"`
	// schedulerName of a pod that would have been pending (no nodeName, not terminal, not
	// being deleted); "" for anything else.
	pendingFor string
}

// strategy is how the API server creates one kind: its registry strategy (whose create
// validation runs) and its resource name (declarative validation reads it from the request).
type strategy struct {
	rest.RESTCreateStrategy
	resource string
}

// strategies cover the kinds the scheduler reads; any other kind is not loaded.
var strategies = map[string]strategy{
	"Pod":                   {pod.Strategy, "pods"},
	"Node":                  {node.Strategy, "nodes"},
	"Namespace":             {namespace.Strategy, "namespaces"},
	"PersistentVolume":      {persistentvolume.Strategy, "persistentvolumes"},
	"PersistentVolumeClaim": {persistentvolumeclaim.Strategy, "persistentvolumeclaims"},
	"Service":               {service.Strategy, "services"},
	"ReplicaSet":            {replicaset.Strategy, "replicasets"},
	"StatefulSet":           {statefulset.Strategy, "statefulsets"},
	"PodDisruptionBudget":   {poddisruptionbudget.Strategy, "poddisruptionbudgets"},
	"PriorityClass":         {priorityclass.Strategy, "priorityclasses"},
	"StorageClass":          {storageclass.Strategy, "storageclasses"},
	"CSINode":               {csinode.Strategy, "csinodes"},
	"DeviceClass":           {deviceclass.Strategy, "deviceclasses"},
	"ResourceClaim":         {resourceclaim.NewStrategy(nil, nil), "resourceclaims"},
	"ResourceSlice":         {resourceslice.Strategy, "resourceslices"},
}

// loaded is a dump as the API server would hold it: typed v1 objects, defaulted.
type loaded struct {
	objects []runtime.Object
	nodes   []*corev1.Node
	pods    []*corev1.Pod
	invalid []invalidObject
}

type objectHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func loadObjects(raws []json.RawMessage) *loaded {
	out := &loaded{}
	var pods []*corev1.Pod
	var classes []*schedulingv1.PriorityClass
	for _, raw := range raws {
		obj, bad := decodeObject(raw)
		if bad != nil {
			if bad.Kind == "Pod" {
				bad.pendingFor = pendingScheduler(raw)
			}
			out.invalid = append(out.invalid, *bad)
			continue
		}
		if obj == nil {
			continue // a kind the scheduler does not read
		}
		switch typed := obj.(type) {
		case *corev1.Pod:
			pods = append(pods, typed)
			continue // admitted below, once every PriorityClass is known
		case *schedulingv1.PriorityClass:
			classes = append(classes, typed)
		case *corev1.Node:
			out.nodes = append(out.nodes, typed)
		}
		out.objects = append(out.objects, obj)
	}
	for _, p := range pods {
		if err := admitPriority(p, classes); err != nil {
			bad := invalidObject{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, Errors: []string{err.Error()}}
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				bad.pendingFor = p.Spec.SchedulerName
			}
			out.invalid = append(out.invalid, bad)
			continue
		}
		out.pods = append(out.pods, p)
		out.objects = append(out.objects, p)
	}
	return out
}

// uidOf is the UID given to an object the dump holds without one (the API server assigns one
// on create; the scheduler's cache keys pods by it).
func uidOf(kind, namespace, name string) types.UID {
	return types.UID(kind + "/" + namespace + "/" + name)
}

// pendingScheduler reads, leniently, whether a pod the API server would refuse was pending
// and for which scheduler (defaulted as the API server would).
func pendingScheduler(raw json.RawMessage) string {
	var p struct {
		Metadata struct {
			DeletionTimestamp any `json:"deletionTimestamp"`
		} `json:"metadata"`
		Spec struct {
			NodeName      any `json:"nodeName"`
			SchedulerName any `json:"schedulerName"`
		} `json:"spec"`
		Status struct {
			Phase any `json:"phase"`
		} `json:"status"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	if node, _ := p.Spec.NodeName.(string); node != "" || p.Metadata.DeletionTimestamp != nil {
		return ""
	}
	if phase, _ := p.Status.Phase.(string); phase == string(corev1.PodSucceeded) || phase == string(corev1.PodFailed) {
		return ""
	}
	if name, ok := p.Spec.SchedulerName.(string); ok && name != "" {
		return name
	}
	return corev1.DefaultSchedulerName
}

// decodeObject decodes, defaults and validates one object. It returns (nil, nil) for a kind
// the oracle does not load.
func decodeObject(raw json.RawMessage) (runtime.Object, *invalidObject) {
	var head objectHeader
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, &invalidObject{Kind: "?", Errors: []string{err.Error()}}
	}
	bad := func(err string) *invalidObject {
		return &invalidObject{Kind: head.Kind, Namespace: head.Metadata.Namespace, Name: head.Metadata.Name, Errors: []string{err}}
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		return nil, bad(err.Error())
	}
	gvk := gv.WithKind(head.Kind)
	s, known := strategies[head.Kind]
	if !known {
		return nil, nil
	}
	obj, err := legacyscheme.Scheme.New(gvk)
	if err != nil {
		return nil, bad(fmt.Sprintf("no kind %q is registered for version %q", head.Kind, head.APIVersion))
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, bad(err.Error())
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	if s.NamespaceScoped() && head.Metadata.Namespace == "" {
		// The API server takes the namespace from the request path; a dump's object without
		// one was created in "default" (as `kubectl create -f` does).
		head.Metadata.Namespace = corev1.NamespaceDefault
		if accessor, err := meta.Accessor(obj); err == nil {
			accessor.SetNamespace(corev1.NamespaceDefault)
		}
	}
	if accessor, err := meta.Accessor(obj); err == nil && accessor.GetUID() == "" {
		accessor.SetUID(uidOf(head.Kind, accessor.GetNamespace(), accessor.GetName())) // as on create
	}
	legacyscheme.Scheme.Default(obj) // the API server's defaulting, as on create
	if problems := validate(obj, gvk, s, head.Metadata.Namespace, head.Metadata.Name); len(problems) > 0 {
		return nil, bad(strings.Join(problems, "; "))
	}
	return obj, nil
}

// validate runs the create validation the API server runs (strategy, object metadata,
// declarative validation) on the internal form of a defaulted object.
func validate(obj runtime.Object, gvk schema.GroupVersionKind, s strategy, ns, name string) []string {
	internal, err := legacyscheme.Scheme.ConvertToVersion(obj, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return []string{err.Error()}
	}
	ctx := genericapirequest.NewContext()
	if !s.NamespaceScoped() {
		ns = ""
	}
	ctx = genericapirequest.WithNamespace(ctx, ns)
	ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true, Verb: "create", APIGroup: gvk.Group, APIVersion: gvk.Version,
		Resource: s.resource, Namespace: ns, Name: name,
	})
	return errorStrings(rest.ValidateCreate(context.WithoutCancel(ctx), internal, s.RESTCreateStrategy))
}

func errorStrings(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	sort.Strings(out)
	return out
}

// admitPriority gives a pod without spec.priority the priority (and preemption policy) of its
// PriorityClass, or of the global default class, as the Priority admission plugin does on
// create (plugin/pkg/admission/priority/admission.go:175-196, establishPriority :313). A dump
// holds stored pods, so a priority already set is kept.
func admitPriority(p *corev1.Pod, classes []*schedulingv1.PriorityClass) error {
	if p.Spec.Priority != nil {
		return nil
	}
	var class *schedulingv1.PriorityClass
	if p.Spec.PriorityClassName == "" {
		for _, c := range classes { // the lowest-valued global default (admission.go:329)
			if c.GlobalDefault && (class == nil || class.Value > c.Value) {
				class = c
			}
		}
	} else {
		for _, c := range classes {
			if c.Name == p.Spec.PriorityClassName {
				class = c
			}
		}
		if class == nil {
			return fmt.Errorf("pods %q is forbidden: no PriorityClass with name %s was found", p.Name, p.Spec.PriorityClassName)
		}
	}
	priority := int32(scheduling.DefaultPriorityWhenNoDefaultClassExists)
	policy := corev1.PreemptLowerPriority
	if class != nil {
		p.Spec.PriorityClassName = class.Name
		priority = class.Value
		if class.PreemptionPolicy != nil {
			policy = *class.PreemptionPolicy
		}
	}
	p.Spec.Priority = &priority
	if p.Spec.PreemptionPolicy == nil {
		p.Spec.PreemptionPolicy = &policy
	}
	return nil
}
