package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// sourceURL is the org.opencontainers.image.source label.
const sourceURL = "https://github.com/eventsidecar/eventsidecar"

// buildImage compiles the binary into tmp and assembles the image around it:
// an empty base and one layer.
func buildImage(ctx context.Context, root, tmp string, caCerts []byte, o Options) (v1.Image, error) {
	bin := filepath.Join(tmp, "eventsidecar")
	if err := goBuild(ctx, root, mainPackage, bin, o); err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read built binary: %w", err)
	}
	tarBytes, err := layerBytes(binary, caCerts, o.Epoch)
	if err != nil {
		return nil, err
	}
	return assemble(tarBytes, o)
}

// assemble makes the image from the layer's uncompressed tar stream.
func assemble(tarBytes []byte, o Options) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base, err := mutate.ConfigFile(empty.Image, configFile(o))
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.Epoch},
			CreatedBy: "go run ./internal/imagebuild",
			Comment:   "eventsidecar " + o.Version + " (commit " + o.Commit + ")",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	return img, nil
}

// configFile is the image configuration before its layer is added: what the
// Dockerfile's final stage says, on linux/o.Arch, created at o.Epoch.
func configFile(o Options) *v1.ConfigFile {
	return &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:         fmt.Sprintf("%d:%d", nonrootID, nonrootID),
			Entrypoint:   []string{"/" + binaryPath},
			Cmd:          []string{"run"},
			WorkingDir:   "/" + dataDir[:len(dataDir)-1],
			ExposedPorts: map[string]struct{}{"3600/tcp": {}, "3601/tcp": {}},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=/" + caCertsPath,
			},
			Labels: map[string]string{
				"org.opencontainers.image.title":    "eventsidecar",
				"org.opencontainers.image.version":  o.Version,
				"org.opencontainers.image.revision": o.Commit,
				"org.opencontainers.image.source":   sourceURL,
			},
		},
	}
}

// writeTarball writes img as a Docker-loadable tarball to path, through a
// temporary file in the same directory so path never holds half an image.
func writeTarball(path string, tag name.Tag, img v1.Image) (Result, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return Result{}, fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	err = tarball.Write(tag, img, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", path, err)
	}
	return describe(path, tag, img)
}

// describe is the Result for img written to path.
func describe(path string, tag name.Tag, img v1.Image) (Result, error) {
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("image digest: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return Result{}, fmt.Errorf("image config digest: %w", err)
	}
	return Result{Path: path, Tag: tag, Digest: digest, ImageID: id}, nil
}
