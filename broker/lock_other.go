//go:build !unix

package broker

import (
	"fmt"
	"os"
)

// lockStore creates the store directory dir when it is missing. Without
// flock(2) the directory is not locked: do not give two sidecars one
// store_dir.
func lockStore(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: embedded store_dir %s: %w", dir, err)
	}
	return func() {}, nil
}
