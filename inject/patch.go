package inject

import (
	"encoding/json"
	"fmt"
)

// patchOp is one RFC 6902 operation. The injector only ever adds: it never
// replaces an array or object of the pod with a re-marshalled copy, so
// fields the API server has and this package's API types do not know
// survive the patch.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// add is the operation that adds value at path.
func add(path string, value any) patchOp {
	return patchOp{Op: "add", Path: path, Value: value}
}

// appendOps appends items to the array at path, which has n elements: as
// the whole array when it has none (absent, null or empty), else one
// "path/-" add per item.
func appendOps[T any](path string, n int, items []T) []patchOp {
	if len(items) == 0 {
		return nil
	}
	if n == 0 {
		return []patchOp{add(path, items)}
	}
	ops := make([]patchOp, 0, len(items))
	for _, it := range items {
		ops = append(ops, add(path+"/-", it))
	}
	return ops
}

// prependOp inserts item before the first element of the array at path,
// which has n elements, creating the array when it has none.
func prependOp[T any](path string, n int, item T) patchOp {
	if n == 0 {
		return add(path, []T{item})
	}
	return add(path+"/0", item)
}

// marshalPatch is the JSON patch of ops, nil when there are none.
func marshalPatch(ops []patchOp) ([]byte, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("inject: marshal patch: %w", err)
	}
	return b, nil
}
