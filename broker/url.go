package broker

import "strings"

// Redact returns the broker URLs of broker.url ("nats://a:4222,nats://b:4222")
// without the userinfo any of them holds, fit for logs and error messages.
func Redact(urls string) string {
	hosts := strings.Split(urls, ",")
	for i, h := range hosts {
		at := strings.LastIndex(h, "@")
		if at < 0 {
			continue
		}
		if scheme, _, ok := strings.Cut(h, "://"); ok && len(scheme) < at {
			hosts[i] = scheme + "://" + h[at+1:]
		} else {
			hosts[i] = h[at+1:]
		}
	}
	return strings.Join(hosts, ",")
}
