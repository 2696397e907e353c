// Package protoclient writes resource.k8s.io/v1 objects (and pods) the way a Go DRA driver or
// controller does: client-go's typed clientset with the protobuf content type (what its typed clients
// send), so a test can check that a server decodes those bodies as kube-apiserver does.
//
// Each line of stdin is {"verb": "create"|"update"|"updateStatus", "object": {...}}; each
// answer is one line on stdout, the object the server returned, as JSON, or
// {"error": "..."} when the server refused it.
package protoclient

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
)

type line struct {
	Verb   string          `json:"verb"`
	Object json.RawMessage `json:"object"`
}

// Main runs the tool; it returns the process exit code.
func Main(args []string) int {
	flags := flag.NewFlagSet("protoclient", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "the server's kubeconfig")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "protoclient: %v\n", err)
		return 2
	}
	config.ContentType = runtime.ContentTypeProtobuf
	config.AcceptContentTypes = runtime.ContentTypeJSON
	clients, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "protoclient: %v\n", err)
		return 2
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var l line
		if err := json.Unmarshal(in.Bytes(), &l); err != nil {
			fmt.Fprintf(os.Stderr, "protoclient: %v\n", err)
			return 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		answer, err := write(ctx, clients, l)
		cancel()
		if err != nil {
			answer = map[string]string{"error": err.Error()}
		}
		if err := out.Encode(answer); err != nil {
			return 1
		}
	}
	return 0
}

func write(ctx context.Context, clients kubernetes.Interface, l line) (any, error) {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(l.Object, nil, nil)
	if err != nil {
		return nil, err
	}
	create, update := metav1.CreateOptions{}, metav1.UpdateOptions{}
	r := clients.ResourceV1()
	switch o := obj.(type) {
	case *resourcev1.DeviceClass:
		if l.Verb == "update" {
			return r.DeviceClasses().Update(ctx, o, update)
		}
		return r.DeviceClasses().Create(ctx, o, create)
	case *resourcev1.ResourceSlice:
		if l.Verb == "update" {
			return r.ResourceSlices().Update(ctx, o, update)
		}
		return r.ResourceSlices().Create(ctx, o, create)
	case *resourcev1.ResourceClaim:
		switch l.Verb {
		case "update":
			return r.ResourceClaims(o.Namespace).Update(ctx, o, update)
		case "updateStatus":
			return r.ResourceClaims(o.Namespace).UpdateStatus(ctx, o, update)
		}
		return r.ResourceClaims(o.Namespace).Create(ctx, o, create)
	case *resourcev1.ResourceClaimTemplate:
		return r.ResourceClaimTemplates(o.Namespace).Create(ctx, o, create)
	case *resourcev1.DeviceTaintRule:
		return r.DeviceTaintRules().Create(ctx, o, create)
	case *corev1.Pod:
		// a pod using what the resource kinds do not: structs inlined into their parent's JSON
		return clients.CoreV1().Pods(o.Namespace).Create(ctx, o, create)
	}
	return nil, fmt.Errorf("protoclient: %T is not a resource.k8s.io/v1 kind or a Pod", obj)
}
