package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// The scaling model of docs/scaling.md: what each event costs at the IdP (calls, by the test
// IdP's counter names) and in Redis (commands, as INFO commandstats names them), with
// --session-store=redis. The simulation mode measures each event once, exactly, and then checks
// that a whole fleet-sized run costs what these numbers predict. Change them only together with
// docs/scaling.md.

// cost is one event's calls: IdP endpoint or Redis command -> count.
type cost map[string]int

func (c cost) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c cost) String() string {
	keys := slices.Sorted(maps.Keys(c))
	var parts []string
	for _, k := range keys {
		if c[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// add adds n times c to c2.
func (c cost) add(c2 cost, n int) {
	for k, v := range c2 {
		c[k] += v * n
	}
}

// simRoutes are the routes a simulated visitor uses, in turn: the widget's token fetch, a proxied
// API call, and the forward-auth check of an ingress.
var simRoutes = []simRoute{
	{name: "/zendesk/token", path: "/zendesk/token", header: map[string]string{"Sec-Fetch-Site": "same-origin", "Accept": "application/json"}, status: 200},
	{name: "upstream", path: "/api", header: map[string]string{"Accept": "application/json"}, status: 200},
	{name: "/oauth2/auth", path: "/oauth2/auth", status: 202},
}

type simRoute struct {
	name, path string
	header     map[string]string
	status     int
}

// costModel is the model's numbers.
type costModel struct {
	loginIdP, loginRedis     cost            // one login (the callback: code exchange, userinfo, save)
	requestRedis             map[string]cost // one request whose confirmation is fresh, by route
	recheckIdP, recheckRedis cost            // added when the confirmation is older than --recheck-interval
}

// The Redis store's operations, each one pipeline (one round trip), by command.
var (
	// sessionRead loads a session: GET it, EXISTS its sid revocation marker, GET its subject marker.
	sessionRead = cost{"get": 2, "exists": 1}
	// sessionSave writes it: SADD+PEXPIRE of the sid and subject indexes, SET of the session.
	sessionSave = cost{"sadd": 2, "pexpire": 2, "set": 1}
	// revocationCheck is Save's look at the markers again, for a logout that raced with it:
	// EXISTS of the session's own marker (sign-out) and of the sid marker, GET of the subject marker.
	revocationCheck = cost{"exists": 2, "get": 1}
	// lock and unlock are the session's refresh lock: SET NX, and EVALSHA of a script that GETs
	// the lock and DELs it if it is still ours.
	lock   = cost{"set": 1}
	unlock = cost{"evalsha": 1, "get": 1, "del": 1}
)

func sum(cs ...cost) cost {
	out := cost{}
	for _, c := range cs {
		out.add(c, 1)
	}
	return out
}

// model is zdgate's cost model. A request with a fresh confirmation reads its session; a login
// saves one; a re-check takes the lock, reads the session again under it (another replica may have
// refreshed it), calls the IdP, saves, and unlocks.
var model = costModel{
	loginIdP:   cost{"token.code": 1, "userinfo": 1},
	loginRedis: sum(sessionSave, revocationCheck),
	requestRedis: map[string]cost{
		"/zendesk/token": sessionRead,
		"upstream":       sessionRead,
		"/oauth2/auth":   sessionRead,
	},
	recheckIdP:   cost{"token.refresh": 1, "userinfo": 1},
	recheckRedis: sum(lock, sessionRead, sessionSave, revocationCheck, unlock),
}

// prediction is what the model says a run costs: logins, requests by route, and re-checks.
func (m costModel) predict(logins int, requests map[string]int, rechecks int) (idp, redis cost) {
	idp, redis = cost{}, cost{}
	idp.add(m.loginIdP, logins)
	redis.add(m.loginRedis, logins)
	for route, n := range requests {
		redis.add(m.requestRedis[route], n)
	}
	idp.add(m.recheckIdP, rechecks)
	redis.add(m.recheckRedis, rechecks)
	return idp, redis
}

// comparison is one predicted-vs-counted row.
type comparison struct {
	what               string
	predicted, counted float64
}

func (c comparison) ratio() float64 {
	if c.predicted == 0 {
		if c.counted == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return c.counted / c.predicted
}

func (c comparison) within(tol float64) bool { return math.Abs(c.ratio()-1) <= tol }

// compare lines up predicted and counted, by key, then the total.
func compare(prefix string, predicted, counted cost) []comparison {
	keys := map[string]bool{}
	for k := range predicted {
		keys[k] = true
	}
	for k := range counted {
		keys[k] = true
	}
	var out []comparison
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		out = append(out, comparison{what: prefix + " " + k, predicted: float64(predicted[k]), counted: float64(counted[k])})
	}
	return append(out, comparison{what: prefix + " total", predicted: float64(predicted.total()), counted: float64(counted.total())})
}

// formatComparisons is the predicted-vs-counted table.
func formatComparisons(rows []comparison, tol float64) string {
	table := [][]string{{"", "predicted", "counted", "counted/predicted", fmt.Sprintf("within %.0f%%", 100*tol)}}
	for _, r := range rows {
		verdict := "yes"
		if !r.within(tol) {
			verdict = "NO"
		}
		table = append(table, []string{r.what, fmt.Sprintf("%.0f", r.predicted), fmt.Sprintf("%.0f", r.counted), fmt.Sprintf("%.3f", r.ratio()), verdict})
	}
	return formatTable(table)
}
