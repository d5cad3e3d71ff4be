package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"time"
)

// Paths and owners inside the image. The Dockerfile uses the same ones.
const (
	binaryPath  = "usr/local/bin/eventsidecar"
	caCertsPath = "etc/ssl/certs/ca-certificates.crt"
	dataDir     = "data/"
	nonrootID   = 65532
)

// passwd and group know root and nonroot (65532); nobody has a login shell,
// and there is no shell in the image anyway.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnonroot:x:65532:\n"
)

// maxCACertsBytes bounds the CA bundle read into memory; Debian's is ~200 KiB.
const maxCACertsBytes = 16 << 20

// entry is one file or directory of the layer. Names have no leading slash;
// directory names end in "/".
type entry struct {
	name string
	mode int64
	id   int // uid and gid
	body []byte
}

// layerEntries lists the whole file system of the image in tar order
// (parents before children): root-owned and read-only to everyone but root,
// except /data, which belongs to nonroot.
func layerEntries(binary, caCerts []byte) []entry {
	return []entry{
		{name: dataDir, mode: 0o755, id: nonrootID},
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caCertsPath, mode: 0o644, body: caCerts},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: binaryPath, mode: 0o755, body: binary},
	}
}

// writeLayer writes entries as an uncompressed tar stream in which every
// entry has the modification time mtime and nothing else varies between
// builds (no user or group names, access or change times).
func writeLayer(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := tw.WriteHeader(header(e, mtime)); err != nil {
			return fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}

// header is the tar header of e.
func header(e entry, mtime time.Time) *tar.Header {
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     e.name,
		Mode:     e.mode,
		Uid:      e.id,
		Gid:      e.id,
		Size:     int64(len(e.body)),
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
	if isDir(e.name) {
		h.Typeflag = tar.TypeDir
		h.Size = 0
	}
	return h
}

// isDir reports whether an entry name is a directory's.
func isDir(name string) bool {
	return name != "" && name[len(name)-1] == '/'
}

// readCACerts reads the PEM bundle at path and checks that it holds at least
// one certificate, so a wrong --ca-certs fails here and not at the first TLS
// handshake in production.
func readCACerts(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-certs: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCACertsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--ca-certs: %w", err)
	}
	if len(data) > maxCACertsBytes {
		return nil, fmt.Errorf("--ca-certs: %s is larger than %d bytes", path, maxCACertsBytes)
	}
	if !hasCertificate(data) {
		return nil, fmt.Errorf("--ca-certs: %s holds no PEM CERTIFICATE block", path)
	}
	return data, nil
}

// hasCertificate reports whether data holds a PEM CERTIFICATE block.
func hasCertificate(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			return true
		}
	}
}

// layerBytes is the tar stream of the image's file system.
func layerBytes(binary, caCerts []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeLayer(&buf, layerEntries(binary, caCerts), mtime); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
