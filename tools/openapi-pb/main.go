// Command openapi-pb turns an OpenAPI v2 (Swagger) JSON document into the protobuf
// kube-apiserver serves at /openapi/v2 (gnostic's openapi_v2.Document), which is the only
// form client-go reads. tools/gen_openapi.py runs it; Berth serves the bytes it writes.
//
//	go run . < v2.json > v2.pb
package main

import (
	"fmt"
	"io"
	"os"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi-pb: reading stdin:", err)
		os.Exit(1)
	}
	doc, err := openapi_v2.ParseDocument(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi-pb: not an OpenAPI v2 document:", err)
		os.Exit(1)
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(doc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi-pb: encoding:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-pb: writing:", err)
		os.Exit(1)
	}
}
