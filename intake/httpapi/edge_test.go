package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestBrowserAndOSCacheAnswersAsTheParser: a User-Agent gets the same names
// parsed, from the cache, and parsed again after uaCacheSize others pushed
// it out.
func TestBrowserAndOSCacheAnswersAsTheParser(t *testing.T) {
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"curl/8.5.0",
	}
	first := map[string][2]string{}
	for _, when := range []string{"parsed", "cached", "parsed again"} {
		if when == "parsed again" {
			for i := range uaCacheSize {
				browserAndOS(fmt.Sprintf("test-agent/%d", i))
			}
		}
		for _, ua := range uas {
			b, os := browserAndOS(ua)
			if when == "parsed" {
				first[ua] = [2]string{b, os}
			} else if got := [2]string{b, os}; got != first[ua] {
				t.Errorf("%s, %q: %q; first %q", when, ua, got, first[ua])
			}
		}
	}
	if got := first[uas[0]]; got != [2]string{"Chrome 120", "Windows 10"} {
		t.Errorf("Chrome on Windows: %q", got)
	}
	if b, os := browserAndOS(""); b != "" || os != "" {
		t.Errorf("no User-Agent: %q, %q; want nothing", b, os)
	}
}

// TestBrowserAndOSCacheCopiesItsKey: the cache keeps a copy of the
// User-Agent, not the string it was given, which may be a slice of a
// header of up to 32 KiB that the cache would then hold whole.
func TestBrowserAndOSCacheCopiesItsKey(t *testing.T) {
	header := "Mozilla/5.0 (X11; Linux x86_64; rv:99.0) Gecko/20100101 Firefox/99.0 copy-test" + strings.Repeat(" ", 32<<10)
	ua := header[:strings.Index(header, " copy-test")+len(" copy-test")]
	browserAndOS(ua)
	for _, k := range uaNames.Keys() {
		if k != ua {
			continue
		}
		if unsafe.StringData(k) == unsafe.StringData(ua) {
			t.Fatal("the cache keeps the caller's string, and with it the whole header")
		}
		return
	}
	t.Fatal("the User-Agent is not in the cache")
}
