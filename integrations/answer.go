package integrations

import (
	"context"
	"encoding/json"
	"io"
)

// ReadAnswer reads at most limit bytes of an answer's body and decodes them
// as JSON into v, reporting whether v holds the answer.
//
// It returns an error only when the answer did not come whole, which is no
// answer to judge: the read failed (the caller's deadline, the client's
// timeout or a dropped connection cut the body off), or what came does not
// decode and ctx had ended by then (a stalled server's empty 200, sent as the
// caller gave up). The error is Transport's — Temporary, Code "timeout" when
// a deadline did it, the cause in its chain — as if no answer had come,
// because none that can be read did. An answer that came whole and is not
// JSON is the system's own doing: (false, nil), for the driver to classify.
func ReadAnswer(ctx context.Context, system, op string, body io.Reader, limit int64, v any) (bool, error) {
	raw, err := io.ReadAll(io.LimitReader(body, limit))
	if err != nil {
		return false, Transport(system, op, err)
	}
	if json.Unmarshal(raw, v) == nil {
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return false, Transport(system, op, err)
	}
	return false, nil
}
