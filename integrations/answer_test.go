package integrations_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// cutBody is a body the deadline cut off: part of the answer, then the
// error net/http gives a read once the request's context ended.
type cutBody struct{ part io.Reader }

func (b cutBody) Read(p []byte) (int, error) {
	if n, _ := b.part.Read(p); n > 0 {
		return n, nil
	}
	return 0, context.DeadlineExceeded
}

func TestReadAnswer(t *testing.T) {
	t.Parallel()
	live := t.Context()
	ended, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		body    io.Reader
		decoded bool
		code    string // the *Error's Code; "" for no error
	}{
		{"whole answer", live, strings.NewReader(`{"ok":true}`), true, ""},
		// A whole answer is the answer, however late it came.
		{"whole answer after the deadline", ended, strings.NewReader(`{"ok":true}`), true, ""},
		// Not JSON, and nothing ended it: the system's own doing.
		{"whole answer that is not JSON", live, strings.NewReader("<html>maintenance</html>"), false, ""},
		{"empty answer", live, strings.NewReader(""), false, ""},
		// A stalled server's empty 200, sent as the caller gave up.
		{"empty answer after the deadline", ended, strings.NewReader(""), false, "timeout"},
		{"body cut by the deadline", live, cutBody{strings.NewReader(`{"ok":`)}, false, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v struct{ OK bool }
			decoded, err := integrations.ReadAnswer(tt.ctx, "telegram", "sendMessage", tt.body, 1<<10, &v)
			if decoded != tt.decoded || decoded != v.OK {
				t.Errorf("decoded = %v (v %+v), want %v", decoded, v, tt.decoded)
			}
			if tt.code == "" {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok || e.Kind != integrations.Temporary || e.Code != tt.code || e.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a Temporary %s wrapping DeadlineExceeded", err, tt.code)
			}
		})
	}
}
