package fakezeno

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/zenoload/zenoload/querydata"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is the fake Zeno API. Create it with New.
type Server struct {
	cfg      Config
	log      *slog.Logger
	keys     map[string]Key // nil = open mode: any well-formed key
	pay      *payloads
	metadata []byte
	handler  http.Handler
	started  time.Time

	st      stats
	quota   quotaStore
	threads *threadStore
	bufs    sync.Pool // *[]byte for per-request trace_info lines
	// known maps the embedded corpus's queries to their kind, so load from
	// zenoload's own corpus gets the latency its row name promises.
	known map[string]kind

	stopping chan struct{} // closed by Close: in-flight requests abort
	stopOnce sync.Once
}

// New validates cfg, fills defaults, loads KeysFile when Keys is empty and
// precomputes every line body.
// corpusKinds classifies the embedded corpus by the list each query is in;
// other queries (user files, other clients) fall back to classify.
func corpusKinds(c *querydata.Corpus) map[string]kind {
	m := make(map[string]kind, len(c.Quick)+len(c.Analysis))
	for _, q := range c.Quick {
		m[q] = kindQuick
	}
	for _, q := range c.Analysis {
		m[q] = kindAnalysis
	}
	return m
}

func New(cfg Config) (*Server, error) {
	if cfg.KeysFile != "" && len(cfg.Keys) == 0 {
		keys, err := LoadKeys(cfg.KeysFile)
		if err != nil {
			return nil, err
		}
		cfg.Keys = keys
	}
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	pay, err := newPayloads(c.LineBytes)
	if err != nil {
		return nil, fmt.Errorf("fakezeno: build payloads: %w", err)
	}
	s := &Server{cfg: c, log: c.Logger, pay: pay, started: time.Now(), stopping: make(chan struct{}),
		known: corpusKinds(querydata.Default()), threads: newThreadStore(c.MaxThreads)}
	s.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	if len(c.Keys) > 0 {
		s.keys = make(map[string]Key, len(c.Keys))
		for _, k := range c.Keys {
			s.keys[k.Prefix] = k
		}
	}
	s.metadata, err = json.Marshal(map[string]any{
		"version": "fakezeno", "layer_id_mapping": map[string]any{}, "subregion_to_subtype_mapping": map[string]any{},
		"gadm_subtype_mapping": map[string]any{},
		"model": map[string]string{"current": "gemini", "model_class": "ChatGoogleGenerativeAI", "model_name": "gemini-3.1-pro-preview",
			"small": "gemini-flash", "small_model_class": "ChatGoogleGenerativeAI", "small_model_name": "gemini-flash-latest"},
	})
	if err != nil {
		return nil, fmt.Errorf("fakezeno: metadata: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/chat", s.handleChat)
	mux.HandleFunc("GET /api/quota", s.handleQuota)
	mux.HandleFunc("GET /api/auth/me", s.handleMe)
	mux.HandleFunc("GET /api/metadata", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.metadata) })
	mux.HandleFunc("DELETE /api/threads/{id}", s.handleDeleteThread)
	mux.HandleFunc("GET /_fake/stats", s.handleStats)
	mux.HandleFunc("POST /_fake/reset-quota", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetQuota()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeDetail(w, http.StatusNotFound, "Not Found") })
	s.handler = mux
	return s, nil
}

// Handler returns the HTTP handler. Injected truncation and shutdown abort
// a response with panic(http.ErrAbortHandler), which net/http handles.
func (s *Server) Handler() http.Handler { return s.handler }

// ResetQuota sets every key's counter to zero (the real server only resets
// at midnight; this is the manual hook for tests).
func (s *Server) ResetQuota() { s.quota.reset() }

// Close makes in-flight requests stop at their next sleep or line boundary;
// streams are cut (the client sees an unexpected EOF). Idempotent. A closed
// Server cannot serve again.
func (s *Server) Close() { s.stopOnce.Do(func() { close(s.stopping) }) }

// Serve serves on ln until ctx is cancelled, then aborts in-flight streams
// and shuts down gracefully (forcefully after 5 s). It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("fakezeno serving", "addr", ln.Addr().String(), "keys", len(s.keys),
		"quota", s.cfg.Quota, "time_scale", s.cfg.TimeScale, "fixed", s.cfg.Fixed != nil)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fakezeno: serve: %w", err)
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("fakezeno: shutdown: %w", err), srv.Close())
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("fakezeno: serve: %w", serr))
	}
	s.log.Info("fakezeno stopped", "addr", ln.Addr().String())
	return err
}

// ListenAndServe listens on addr (TCP) and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("fakezeno: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// writeJSON writes a compact JSON body like Starlette's JSONResponse.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeDetail(w http.ResponseWriter, code int, detail string) {
	writeJSON(w, code, detailBody(detail))
}

func detailBody(detail string) []byte {
	b, _ := json.Marshal(struct {
		Detail string `json:"detail"`
	}{detail}) // cannot fail for a string
	return b
}

// Exact 401 details from the real server (zeno-api.md A1.2).
const (
	detailMissingBearer = "Missing Bearer token in Authorization header"
	detailBadFormat     = "Invalid machine user token format"
	detailUnknownKey    = "Invalid or inactive machine user key"
	detailWrongSecret   = "Invalid machine user key"
	detailExpired       = "Machine user key has expired"
	// Resource Watch's raw text, passed through for non-machine tokens.
	detailRW = `{"errors":[{"status":401,"detail":"Not authenticated"}]}`
)

// authenticate mirrors HTTPBearer plus validate_machine_user_token. It
// returns the key prefix and its quota, or a non-empty 401 detail.
func (s *Server) authenticate(r *http.Request, now time.Time) (prefix string, quota int, detail string) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || cred == "" {
		return "", 0, detailMissingBearer
	}
	prefix, secret, machine, formatOK := parseToken(cred)
	switch {
	case !machine:
		return "", 0, detailRW
	case !formatOK:
		return "", 0, detailBadFormat
	case prefix == "":
		return "", 0, detailUnknownKey
	}
	if s.keys == nil {
		if secret == "" {
			return "", 0, detailWrongSecret
		}
		return prefix, s.cfg.Quota, ""
	}
	k, ok := s.keys[prefix]
	if !ok || k.Inactive {
		return "", 0, detailUnknownKey
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(k.Secret)) != 1 {
		return "", 0, detailWrongSecret
	}
	if !k.ExpiresAt.IsZero() && now.After(k.ExpiresAt) {
		return "", 0, detailExpired
	}
	if k.Quota > 0 {
		return prefix, k.Quota, ""
	}
	return prefix, s.cfg.Quota, ""
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request) {
	s.st.quotaRequests.Add(1)
	now := time.Now()
	prefix, quota, detail := s.authenticate(r, now)
	if detail != "" {
		writeDetail(w, http.StatusUnauthorized, detail)
		return
	}
	b, _ := json.Marshal(struct {
		Used  int64 `json:"promptsUsed"`
		Quota int   `json:"promptQuota"`
	}{s.quota.peek(prefix, quota, now), quota})
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	prefix, quota, detail := s.authenticate(r, now)
	if detail != "" {
		writeDetail(w, http.StatusUnauthorized, detail)
		return
	}
	h := fnv.New64a()
	h.Write([]byte(prefix))
	ts := s.started.UTC().Format(time.RFC3339)
	b, _ := json.Marshal(map[string]any{
		"id": fmt.Sprintf("machine_%012x", h.Sum64()&0xffffffffffff), "name": "fakezeno machine user " + prefix,
		"email": nil, "createdAt": ts, "updatedAt": ts, "threads": []any{}, "userType": "machine",
		"promptsUsed": s.quota.peek(prefix, quota, now), "promptQuota": quota,
	})
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleDeleteThread(w http.ResponseWriter, r *http.Request) {
	prefix, _, detail := s.authenticate(r, time.Now())
	if detail != "" {
		writeDetail(w, http.StatusUnauthorized, detail)
		return
	}
	if !s.threads.remove(r.PathValue("id"), prefix) {
		writeDetail(w, http.StatusNotFound, "Thread not found")
		return
	}
	s.st.threadsDeleted.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	b, err := json.MarshalIndent(s.Stats(), "", "  ")
	if err != nil {
		s.log.Error("fakezeno: marshal stats", "err", err)
		writeDetail(w, http.StatusInternalServerError, "stats: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}
