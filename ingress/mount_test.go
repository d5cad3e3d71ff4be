package ingress

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/problem"
)

// adminRoutes answers 200 on the admin API's routes (egress.Admin serves
// them for real, and has their tests): ingress's part is mounting them
// under /v1, behind the token.
type adminRoutes struct{}

var _ Mounter = adminRoutes{}

func (adminRoutes) Routes(r chi.Router) {
	ok := func(w http.ResponseWriter, _ *http.Request) { problem.WriteJSON(w, http.StatusOK, map[string]int{}) }
	r.Get("/subscriptions", ok)
	r.Get("/subscriptions/{name}/deadletters", ok)
	r.Delete("/subscriptions/{name}/deadletters", ok)
	r.Post("/subscriptions/{name}/deadletters/replay", ok)
}

// newAdminHarness is newHarness with adminRoutes mounted.
func newAdminHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	base := newHarness(t, mutate)
	return newHarnessOn(t, base.cfg, base.broker, base.broker, adminRoutes{}, nil, base.log)
}

func TestAdminToken(t *testing.T) {
	h := newAdminHarness(t, func(c *config.Config) { c.HTTP.APIToken = "s3cret" })
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/subscriptions", ""},
		{http.MethodGet, "/v1/subscriptions/orders/deadletters", ""},
		{http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"ids":["nope"]}`},
		{http.MethodDelete, "/v1/subscriptions/orders/deadletters?id=nope", ""},
	}
	auths := []struct {
		name string
		auth []string
		want int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", []string{"Authorization: Bearer nope"}, http.StatusUnauthorized},
		{"right", []string{"Authorization: Bearer s3cret"}, http.StatusOK},
	}
	for _, a := range auths {
		for _, r := range requests {
			t.Run(a.name+" "+r.method+" "+r.path, func(t *testing.T) {
				wantStatus(t, h.do(r.method, r.path, r.body, a.auth...), a.want)
			})
		}
	}
}
