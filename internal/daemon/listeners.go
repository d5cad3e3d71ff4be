package daemon

import (
	"fmt"
	"net"

	"github.com/eventsidecar/eventsidecar/config"
)

// Addrs are the addresses a daemon's listeners are bound to.
type Addrs struct {
	// HTTP is the HTTP API's (http.listen).
	HTTP net.Addr
	// GRPC is the gRPC API's (grpc.listen); nil when gRPC is off.
	GRPC net.Addr
	// Health is the health endpoints' (http.health_listen); nil when off.
	Health net.Addr
}

// listeners are the bound listeners: the HTTP API's, and the gRPC API's and
// the health endpoints' when configured (else nil).
type listeners struct {
	http, grpc, health net.Listener
}

// listen binds the HTTP listener and, when configured, the gRPC and health
// ones; an error names the listener and its address.
func listen(cfg config.Config) (listeners, error) {
	var l listeners
	var err error
	if l.http, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return l, fmt.Errorf("listen http %s: %w", cfg.HTTP.Listen, err)
	}
	if l.grpc, err = listenOptional("grpc", cfg.GRPC.Listen); err == nil {
		l.health, err = listenOptional("health", cfg.HTTP.HealthListen)
	}
	if err != nil {
		l.close()
		return listeners{}, err
	}
	return l, nil
}

// listenOptional binds addr, or returns a nil listener when addr is "".
func listenOptional(what, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", what, addr, err)
	}
	return ln, nil
}

// addrs returns the listeners' addresses.
func (l listeners) addrs() Addrs {
	a := Addrs{HTTP: l.http.Addr()}
	if l.grpc != nil {
		a.GRPC = l.grpc.Addr()
	}
	if l.health != nil {
		a.Health = l.health.Addr()
	}
	return a
}

// close closes the listeners; those a server already closed stay closed.
func (l listeners) close() {
	for _, ln := range []net.Listener{l.http, l.grpc, l.health} {
		if ln != nil {
			ln.Close()
		}
	}
}
