package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "eventsidecar ") || !strings.Contains(string(out), runtime.Version()) {
		t.Errorf("version printed %q", out)
	}
}

func TestPublishCommand(t *testing.T) {
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	cmd := exec.Command(binary, "publish", "--addr", strings.TrimPrefix(sc.url(""), "http://"),
		"--topic", "orders.created", "--type", "com.example.cli", "--source", "/cli", "-")
	cmd.Stdin = strings.NewReader(`{"from":"stdin"}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("publish: %v: %s", err, out)
	}
	var r receipt
	if err := json.Unmarshal(out, &r); err != nil || r.Sequence != 1 || r.Source != "/cli" || r.Topic != "orders.created" {
		t.Fatalf("publish printed %s (%v)", out, err)
	}
	msg, err := stream(t, sc.natsURL).GetMsg(t.Context(), r.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != `{"from":"stdin"}` || msg.Header.Get("ce-type") != "com.example.cli" {
		t.Errorf("stored %q with headers %v", msg.Data, msg.Header)
	}
}

func TestBadConfigNamesKeyAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("app_id: x\nhttp:\n  listen: 127.0.0.1:0\n  colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "run", "--config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("run with a bad config succeeded: %s", out)
	}
	if !strings.Contains(string(out), "colour") || !strings.Contains(string(out), "line 4") {
		t.Errorf("error %q does not name the key and line", out)
	}
}
