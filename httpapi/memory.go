package httpapi

import (
	"net/http"
	"strconv"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
)

// memoryRoutes registers the memory routes. The profile routes act on the
// principal's own profile only: there is no route to anyone else's.
//
//	GET    /v1/memory/profile           the profile, or 404
//	PUT    /v1/memory/profile           replace it (validated; 400 names the field)
//	DELETE /v1/memory/profile           forget it (204, also when there was none)
//	GET    /v1/memory/session/{id}      the thread's facts, newest first,
//	                                    or best first for ?q=; ?limit= (default 100)
func (s *Server) memoryRoutes() {
	s.mux.HandleFunc("GET /v1/memory/profile", s.getProfile)
	s.mux.HandleFunc("PUT /v1/memory/profile", s.putProfile)
	s.mux.HandleFunc("DELETE /v1/memory/profile", s.deleteProfile)
	s.mux.HandleFunc("GET /v1/memory/session/{id}", s.sessionFacts)
}

// defaultSessionLimit is how many facts GET /v1/memory/session/{id}
// returns without ?limit=.
const defaultSessionLimit = 100

// memoryService returns the memory service, or answers 503 and returns
// nil when the server has none.
func (s *Server) memoryService(w http.ResponseWriter, r *http.Request) *memory.Service {
	if s.opts.Memory == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "memory is not configured on this server"))
	}
	return s.opts.Memory
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	m := s.memoryService(w, r)
	if m == nil {
		return
	}
	p, err := m.Profile(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	m := s.memoryService(w, r)
	if m == nil {
		return
	}
	var p memory.Profile
	if err := s.decodeBody(w, r, &p, false); err != nil {
		s.error(w, r, err)
		return
	}
	p, err := m.PutProfile(r.Context(), p)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	m := s.memoryService(w, r)
	if m == nil {
		return
	}
	if err := m.DeleteProfile(r.Context()); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sessionResponse is the answer of GET /v1/memory/session/{id}.
type sessionResponse struct {
	Thread string        `json:"thread"`
	Query  string        `json:"query,omitempty"`
	Facts  []memory.Fact `json:"facts"`
}

// sessionFacts answers a thread's session memory. The thread must exist in
// the principal's tenant, as for every thread route.
func (s *Server) sessionFacts(w http.ResponseWriter, r *http.Request) {
	m := s.memoryService(w, r)
	if m == nil {
		return
	}
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	limit := defaultSessionLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > memory.MaxRecallLimit {
			s.error(w, r, vigil.FieldError("limit", "must be a number from 1 to %d, got %q", memory.MaxRecallLimit, v))
			return
		}
		limit = n
	}
	if _, err := s.opts.Log.Thread(r.Context(), tenant, id); err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query().Get("q")
	facts, err := m.Recall(r.Context(), id, q, limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	for i := range facts {
		facts[i].Vector = nil // recall's business, not the client's
	}
	if facts == nil {
		facts = []memory.Fact{}
	}
	writeJSON(w, http.StatusOK, sessionResponse{Thread: id, Query: q, Facts: facts})
}
