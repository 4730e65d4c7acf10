package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	promql "github.com/prometheus/prometheus/promql/parser"
)

// prometheusMetrics are series Prometheus makes itself, not leadgate.
var prometheusMetrics = []string{"up"}

// TestAlertRules parses docs/alerts.yml as Prometheus does (rulefmt: the
// YAML, every PromQL expression, every annotation template), and holds
// each alert to what an on-call engineer needs: a for:, a severity, a
// summary and a description pointing at a section of docs/deploy.md that
// exists, and metric names leadgate registers.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	content, err := os.ReadFile("../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := promql.NewParser(promql.Options{})
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	anchors := deployAnchors(t)
	known := registeredMetrics(t)
	var alerts int
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule (%s): this file is for alerts", g.Name, r.Record)
				continue
			}
			alerts++
			if r.For <= 0 {
				t.Errorf("%s: no for:, so one bad scrape pages someone", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			links := deployLink.FindAllStringSubmatch(r.Annotations["description"], -1)
			if len(links) == 0 {
				t.Errorf("%s: the description links no section of docs/deploy.md", r.Alert)
			}
			for _, l := range links {
				if !slices.Contains(anchors, l[1]) {
					t.Errorf("%s links docs/deploy.md#%s, which has no such section", r.Alert, l[1])
				}
			}
			checkMetricNames(t, p, "docs/alerts.yml "+r.Alert, r.Expr, known)
		}
	}
	if alerts < 10 {
		t.Errorf("%d alerts parsed, want the whole file's", alerts)
	}
}

// TestDashboard checks docs/grafana-dashboard.json: valid JSON with panels,
// each querying PromQL that parses and names metrics leadgate registers.
func TestDashboard(t *testing.T) {
	t.Parallel()
	content, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(content, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard uid %q, title %q: Grafana needs both to import and link it", dash.UID, dash.Title)
	}
	p := promql.NewParser(promql.Options{})
	known := registeredMetrics(t)
	var queries int
	for _, pn := range dash.Panels {
		if pn.Type == "row" {
			continue
		}
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			queries++
			// Grafana fills in $__rate_interval before Prometheus sees it.
			checkMetricNames(t, p, "panel "+pn.Title, strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m"), known)
		}
	}
	if queries < 15 {
		t.Errorf("%d queries found, want the whole dashboard's", queries)
	}
}

// checkMetricNames parses expr and reports every metric it selects that is
// not in known. A histogram is selected by its series' names (_bucket,
// _sum, _count).
func checkMetricNames(t *testing.T, p promql.Parser, where, expr string, known map[string]bool) {
	t.Helper()
	e, err := p.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	selectors := promql.ExtractSelectors(e)
	if len(selectors) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	for _, sel := range selectors {
		i := slices.IndexFunc(sel, func(m *labels.Matcher) bool { return m.Name == model.MetricNameLabel })
		if i < 0 || sel[i].Type != labels.MatchEqual {
			t.Errorf("%s: a selector without one metric name in %q", where, expr)
			continue
		}
		if !known[sel[i].Value] {
			t.Errorf("%s: metric %s is not registered by leadgate", where, sel[i].Value)
		}
	}
}

// registeredMetrics is every series name leadgate can expose: what the
// process's registry gathers (the Go and process collectors) and the
// name of every collector declared in the module's code, read from the
// source because a counter vector with no series yet is not gathered at
// all; plus prometheusMetrics.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		known[f.GetName()] = true
	}
	declared := declaredMetrics(t, "../..")
	for name, kind := range declared {
		known[name] = true
		switch kind {
		case "HistogramOpts":
			known[name+"_bucket"], known[name+"_sum"], known[name+"_count"] = true, true, true
		case "SummaryOpts":
			known[name+"_sum"], known[name+"_count"] = true, true
		}
	}
	for _, name := range []string{"leadgate_leads", "leadgate_queue_tasks", "leadgate_http_requests_total"} {
		if _, ok := declared[name]; !ok {
			t.Errorf("%s not found in the source: declaredMetrics no longer reads how metrics are declared", name)
		}
	}
	for _, name := range prometheusMetrics {
		known[name] = true
	}
	return known
}

// declaredMetrics reads the Go source under root (tests and node_modules
// left out) for prometheus.XxxOpts{Name: "…"} and prometheus.NewDesc("…",
// …), the two ways leadgate declares a metric, and returns each name with
// its Opts type name ("Desc" for NewDesc).
func declaredMetrics(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == "testdata" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if kind := prometheusSelector(n.Type); strings.HasSuffix(kind, "Opts") {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Name") {
							if name, ok := stringLit(kv.Value); ok {
								out[name] = kind
							}
						}
					}
				}
			case *ast.CallExpr:
				if prometheusSelector(n.Fun) == "NewDesc" && len(n.Args) > 0 {
					if name, ok := stringLit(n.Args[0]); ok {
						out[name] = "Desc"
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// prometheusSelector returns Sel of an expression prometheus.Sel, else "".
func prometheusSelector(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok && isIdent(s.X, "prometheus") {
		return s.Sel.Name
	}
	return ""
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// deployLink is a link to a section of docs/deploy.md in an annotation.
var deployLink = regexp.MustCompile(`docs/deploy\.md#([a-z0-9-]+)`)

// deployAnchors are the anchors GitHub gives the headings of docs/deploy.md.
func deployAnchors(t *testing.T) []string {
	t.Helper()
	content, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(content), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out = append(out, strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
				return r
			}
			return -1
		}, heading))
	}
	return out
}
