package bitrix24test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// timing is the "time" object every answer carries.
func timing() map[string]any {
	now := time.Now()
	return map[string]any{
		"start": float64(now.UnixNano()) / 1e9, "finish": float64(now.UnixNano())/1e9 + 0.01,
		"duration": 0.01, "processing": 0.005,
		"date_start": now.Format(time.RFC3339), "date_finish": now.Format(time.RFC3339),
		"operating_reset_at": now.Add(10 * time.Minute).Unix(), "operating": 0,
	}
}

func crmError(w http.ResponseWriter, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "", "error_description": description})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits = append(s.hits, r.Method+" "+strings.ReplaceAll(r.URL.Path, Secret, "{secret}"))
	s.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/rest/"+User+"/"+Secret+"/")
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"})
		return
	}
	method, ok := strings.CutSuffix(rest, ".json")
	if !ok || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "INVALID_REQUEST", "error_description": "Bad request"})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "INVALID_REQUEST", "error_description": "Bad JSON"})
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{method, body})
	s.counts[method]++
	n := s.counts[method]
	s.mu.Unlock()

	var f *Fault
	if s.fault != nil {
		f = s.fault(method, n)
	}
	if f == nil {
		s.answer(w, method, body)
		return
	}
	if f.Commit {
		// The portal's answer is carried out and then lost.
		s.answer(httptest.NewRecorder(), method, body)
	}
	switch {
	case f.Stall:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		// Still no answer: returning would send net/http's empty 200,
		// which a caller whose own timeout had just fired could read
		// before noticing it (TestTimeouts failed so, once in CI).
		panic(http.ErrAbortHandler)
	case f.Drop:
		// net/http closes the connection (resets the stream in HTTP/2)
		// without sending anything, and logs nothing.
		panic(http.ErrAbortHandler)
	default:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		if strings.HasPrefix(f.Body, "{") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(cmp.Or(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(f.Body))
	}
}

// answer carries out method as the portal does and writes its answer.
func (s *Server) answer(w http.ResponseWriter, method string, body map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "crm.settings.mode.get" {
		writeJSON(w, http.StatusOK, map[string]any{"result": s.mode, "time": timing()})
		return
	}
	if owner, ok := strings.CutSuffix(method, ".contact.items.get"); ok {
		typ := strings.TrimPrefix(owner, "crm.")
		if _, known := s.contacts[typ]; known && strings.HasPrefix(owner, "crm.") {
			if id, ok := s.id(w, typ, body); ok {
				items := []map[string]any{}
				for i, c := range s.contacts[typ][id] {
					items = append(items, map[string]any{"CONTACT_ID": c, "SORT": 10 * (i + 1), "ROLE_ID": 0,
						"IS_PRIMARY": map[bool]string{true: "Y", false: "N"}[i == 0]})
				}
				writeJSON(w, http.StatusOK, map[string]any{"result": items, "time": timing()})
			}
			return
		}
	}
	typ, op, ok := strings.Cut(strings.TrimPrefix(method, "crm."), ".")
	if _, known := s.ents[typ]; !ok || !known || !strings.HasPrefix(method, "crm.") {
		op = ""
	}
	switch op {
	case "list":
		s.list(w, typ, body)
	case "add":
		fields, _ := body["fields"].(map[string]any)
		id := s.add(typ, fields)
		if typ == TypeLead && s.mode == ModeSimple && s.ents[typ][id].fields["NAME"] != "" {
			s.convert(id, 0)
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": id, "time": timing()})
	case "get":
		if id, ok := s.id(w, typ, body); ok {
			writeJSON(w, http.StatusOK, map[string]any{"result": s.view(typ, id), "time": timing()})
		}
	case "update":
		if id, ok := s.id(w, typ, body); ok {
			fields, _ := body["fields"].(map[string]any)
			s.set(typ, id, fields)
			writeJSON(w, http.StatusOK, map[string]any{"result": true, "time": timing()})
		}
	case "delete":
		if id, ok := s.id(w, typ, body); ok {
			s.remove(typ, id)
			writeJSON(w, http.StatusOK, map[string]any{"result": true, "time": timing()})
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})
	}
}

// id reads body's "id" and answers the CRM errors for a bad or unknown one;
// s.mu is held.
func (s *Server) id(w http.ResponseWriter, typ string, body map[string]any) (int, bool) {
	var n int
	switch v := body["id"].(type) {
	case string:
		n, _ = strconv.Atoi(v)
	case float64:
		n = int(v)
	}
	if n <= 0 {
		crmError(w, "ID is not defined or invalid.")
		return 0, false
	}
	if _, ok := s.ents[typ][n]; !ok {
		crmError(w, "Not found")
		return 0, false
	}
	return n, true
}

// set applies fields to entity id as crm.{typ}.add and .update do; s.mu is
// held. LEAD_ID is read-only after the add, as the deal reference says.
func (s *Server) set(typ string, id int, fields map[string]any) {
	r := s.ents[typ][id]
	for k, v := range fields {
		if k != "PHONE" && k != "EMAIL" {
			if k == "LEAD_ID" && r.fields[k] != "" {
				continue
			}
			r.fields[k] = fmt.Sprint(v)
			continue
		}
		items, _ := v.([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			itemID, _ := m["ID"].(string)
			value, _ := m["VALUE"].(string)
			valueType, _ := m["VALUE_TYPE"].(string)
			stored := r.multi[k]
			if i := slices.IndexFunc(stored, func(v Value) bool { return itemID != "" && v.ID == itemID }); i >= 0 {
				if value == "" {
					stored = slices.Delete(stored, i, i+1)
				} else {
					stored[i].Value = value
					if valueType != "" {
						stored[i].ValueType = valueType
					}
				}
				r.multi[k] = stored
				continue
			}
			if value != "" {
				s.nextFM++
				r.multi[k] = append(stored, Value{strconv.Itoa(s.nextFM), k, value, valueType})
			}
		}
	}
}

// view is entity id as crm.{typ}.get returns it; s.mu is held.
func (s *Server) view(typ string, id int) map[string]any {
	r := s.ents[typ][id]
	out := map[string]any{"ID": strconv.Itoa(id)}
	for k, v := range r.fields {
		out[k] = v
	}
	for k, values := range r.multi {
		var items []map[string]string
		for _, v := range values {
			items = append(items, map[string]string{"ID": v.ID, "VALUE_TYPE": v.ValueType, "VALUE": v.Value, "TYPE_ID": v.TypeID})
		}
		if len(items) > 0 {
			out[k] = items
		}
	}
	return out
}

// list answers crm.{typ}.list: exact-match filter, select, ID order; s.mu
// is held. A CONTACT_ID filter on deals or companies matches every linked
// contact, not only the first.
func (s *Server) list(w http.ResponseWriter, typ string, body map[string]any) {
	filter, _ := body["filter"].(map[string]any)
	sel, _ := body["select"].([]any)
	var ids []int
	for id, r := range s.ents[typ] {
		match := true
		for k, v := range filter {
			want := fmt.Sprint(v)
			if links, ok := s.contacts[typ]; ok && k == "CONTACT_ID" {
				c, _ := strconv.Atoi(want)
				if !slices.Contains(links[id], c) {
					match = false
				}
				continue
			}
			if got, ok := r.fields[k]; !ok || got != want {
				match = false
			}
		}
		if match {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	result := []map[string]any{}
	for _, id := range ids {
		row := map[string]any{}
		full := s.view(typ, id)
		for _, f := range sel {
			name, _ := f.(string)
			row[name] = full[name]
		}
		result = append(result, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": result, "total": len(result), "time": timing()})
}
