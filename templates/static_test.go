package templates

import (
	"testing"
)

// TestStaticAssets: each file is there with its type, and its URL carries
// a version that changes with its content.
func TestStaticAssets(t *testing.T) {
	t.Parallel()
	for name, ctype := range map[string]string{
		"leadgate.css": "text/css; charset=utf-8",
		"leadgate.js":  "text/javascript; charset=utf-8",
	} {
		a, ok := StaticAsset(name)
		if !ok || len(a.Content) == 0 || a.ContentType != ctype || len(a.Version) != 16 {
			t.Errorf("StaticAsset(%q) = %q %q version %q, %d bytes, want %q", name, a.Name, a.ContentType, a.Version, len(a.Content), ctype)
			continue
		}
		if u, err := StaticURL(name); err != nil || u != "/static/"+name+"?v="+a.Version {
			t.Errorf("StaticURL(%q) = %q, %v", name, u, err)
		}
	}
	for _, name := range []string{"", "missing.css", "../pages/layout.html", "static/leadgate.css"} {
		if _, ok := StaticAsset(name); ok {
			t.Errorf("StaticAsset(%q) found something", name)
		}
		if u, err := StaticURL(name); err == nil {
			t.Errorf("StaticURL(%q) = %q, want an error", name, u)
		}
	}
	css, _ := StaticAsset("leadgate.css")
	js, _ := StaticAsset("leadgate.js")
	if css.Version == js.Version {
		t.Error("two files have the same version")
	}
}
