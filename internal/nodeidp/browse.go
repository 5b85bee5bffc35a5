package nodeidp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxSteps bounds the pages and redirects one Login or Logout goes through.
const maxSteps = 12

// Login plays the user at the provider: it opens authURL (an authorization request from the
// client under test), signs in as login with password on the login page, and follows the flow until
// the provider redirects away from itself — normally to the client's redirect_uri with code and
// state, or with error=... when the provider refuses the request (e.g. no PKCE). That response is
// returned unfollowed and unread, for the caller to deliver to its callback and to close.
//
// client must have a cookie jar: the provider's session lives in cookies, so a second Login with
// the same client finds the user signed in and asks for nothing. Login fails if the provider shows
// its login page again after the password was sent (unknown login, wrong password, deleted
// account) or an error page.
func (p *IdP) Login(client *http.Client, authURL, login, password string) (*http.Response, error) {
	c, err := p.noRedirects(client)
	if err != nil {
		return nil, fmt.Errorf("nodeidp: login: %w", err)
	}
	req, err := http.NewRequest(http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("nodeidp: login: %w", err)
	}
	signedIn := false
	for range maxSteps {
		resp, doc, err := p.step(c, req)
		if err != nil {
			return nil, fmt.Errorf("nodeidp: login: %w", err)
		}
		if doc == nil {
			return resp, nil // left the provider
		}
		f := firstPostForm(doc)
		if f == nil {
			return nil, fmt.Errorf("nodeidp: login: no form at %s: %s", resp.Request.URL, pageText(doc))
		}
		if f.hasPassword() {
			if signedIn {
				return nil, fmt.Errorf("nodeidp: login as %q refused: %s", login, pageText(doc))
			}
			signedIn = true
		}
		if req, err = f.request(resp.Request.URL, login, password); err != nil {
			return nil, fmt.Errorf("nodeidp: login: %w", err)
		}
	}
	return nil, fmt.Errorf("nodeidp: login: no redirect away from the provider after %d steps", maxSteps)
}

// Logout plays the user through RP-initiated logout: it opens endSessionURL (the provider's
// end_session_endpoint with id_token_hint or client_id, and post_logout_redirect_uri), confirms on
// the provider's page ("sign me out" of the whole provider session), and stops at the redirect to
// post_logout_redirect_uri or at the provider's signed-out page. client must carry the provider's
// session cookies (the jar used for Login). The provider sends back-channel logout tokens before it
// answers the confirmation, so they have been delivered (or have failed; see Counts) when Logout
// returns.
func (p *IdP) Logout(client *http.Client, endSessionURL string) error {
	c, err := p.noRedirects(client)
	if err != nil {
		return fmt.Errorf("nodeidp: logout: %w", err)
	}
	req, err := http.NewRequest(http.MethodGet, endSessionURL, nil)
	if err != nil {
		return fmt.Errorf("nodeidp: logout: %w", err)
	}
	confirmed := false
	for range maxSteps {
		resp, doc, err := p.step(c, req)
		if err != nil {
			return fmt.Errorf("nodeidp: logout: %w", err)
		}
		if doc == nil {
			resp.Body.Close()
			if !confirmed {
				return fmt.Errorf("nodeidp: logout: redirected to %s before confirming", resp.Header.Get("Location"))
			}
			return nil
		}
		if confirmed {
			return nil // the provider's own "signed out" page
		}
		f := firstPostForm(doc)
		if f == nil {
			return fmt.Errorf("nodeidp: logout: no confirmation form at %s: %s", resp.Request.URL, pageText(doc))
		}
		if req, err = f.request(resp.Request.URL, "", ""); err != nil {
			return fmt.Errorf("nodeidp: logout: %w", err)
		}
		confirmed = true
	}
	return fmt.Errorf("nodeidp: logout: not done after %d steps", maxSteps)
}

// noRedirects returns a copy of client that hands every redirect back, so the flow can be
// stopped where it leaves the provider.
func (p *IdP) noRedirects(client *http.Client) (*http.Client, error) {
	if client == nil || client.Jar == nil {
		return nil, errors.New("the http.Client needs a cookie jar")
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c, nil
}

// step sends req. A redirect within the provider is followed; one away from it is returned with
// doc == nil and the body unread. A 200 HTML page from the provider is returned parsed (body
// closed). Anything else is an error.
func (p *IdP) step(c *http.Client, req *http.Request) (*http.Response, *html.Node, error) {
	for range maxSteps {
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, err := resp.Location()
			if err != nil {
				resp.Body.Close()
				return nil, nil, fmt.Errorf("%s from %s: %w", resp.Status, req.URL, err)
			}
			if !p.onProvider(loc) {
				return resp, nil, nil
			}
			drain(resp)
			if req, err = http.NewRequest(http.MethodGet, loc.String(), nil); err != nil {
				return nil, nil, err
			}
			continue
		case http.StatusOK:
			doc, err := html.Parse(io.LimitReader(resp.Body, 1<<20))
			drain(resp)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", req.URL, err)
			}
			return resp, doc, nil
		default:
			doc, _ := html.Parse(io.LimitReader(resp.Body, 1<<20))
			drain(resp)
			text := ""
			if doc != nil {
				text = pageText(doc)
			}
			return nil, nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, text)
		}
	}
	return nil, nil, fmt.Errorf("more than %d redirects", maxSteps)
}

func (p *IdP) onProvider(u *url.URL) bool {
	iss, err := url.Parse(p.issuer)
	return err == nil && u.Scheme == iss.Scheme && u.Host == iss.Host
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// form is an HTML form with its controls, as a browser would submit it.
type form struct {
	action, method string
	inputs         []*html.Node // input, select, textarea that belong to the form
	buttons        []*html.Node // submit buttons that belong to the form, in document order
}

func (f *form) hasPassword() bool {
	for _, n := range f.inputs {
		if attr(n, "type") == "password" {
			return true
		}
	}
	return false
}

// request builds the submission of f as if the user filled in login and password and pressed its
// first submit button.
func (f *form) request(base *url.URL, login, password string) (*http.Request, error) {
	action, err := base.Parse(f.action)
	if err != nil {
		return nil, fmt.Errorf("form action %q: %w", f.action, err)
	}
	v := url.Values{}
	loginDone := false
	for _, n := range f.inputs {
		name := attr(n, "name")
		if name == "" || hasAttr(n, "disabled") {
			continue
		}
		switch typ := strings.ToLower(attr(n, "type")); {
		case n.DataAtom == atom.Textarea:
			v.Add(name, textOf(n))
		case n.DataAtom == atom.Select:
			v.Add(name, selected(n))
		case typ == "password":
			v.Add(name, password)
		case typ == "checkbox" || typ == "radio":
			if hasAttr(n, "checked") {
				v.Add(name, valueOr(n, "on"))
			}
		case typ == "hidden":
			v.Add(name, attr(n, "value"))
		case typ == "submit" || typ == "image" || typ == "button" || typ == "reset" || typ == "file":
			// buttons are handled below; files are never part of these forms
		case !loginDone && (name == "login" || name == "username" || name == "email" || typ == "" || typ == "text" || typ == "email"):
			v.Add(name, login)
			loginDone = true
		default:
			v.Add(name, attr(n, "value"))
		}
	}
	if len(f.buttons) > 0 {
		if b := f.buttons[0]; attr(b, "name") != "" {
			v.Add(attr(b, "name"), attr(b, "value"))
		}
	}
	if f.method != "post" {
		action.RawQuery = v.Encode()
		return http.NewRequest(http.MethodGet, action.String(), nil)
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// firstPostForm returns the page's first form that is submitted with POST, with the controls
// that belong to it (nested, or elsewhere with form="its id").
func firstPostForm(doc *html.Node) *form {
	var fn *html.Node
	walk(doc, func(n *html.Node) bool {
		if fn == nil && n.DataAtom == atom.Form && strings.EqualFold(attr(n, "method"), "post") {
			fn = n
		}
		return fn == nil
	})
	if fn == nil {
		return nil
	}
	f := &form{action: attr(fn, "action"), method: "post"}
	id := attr(fn, "id")
	walk(doc, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return true
		}
		owner := attr(n, "form")
		belongs := (owner == "" && inside(n, fn)) || (owner != "" && owner == id)
		if !belongs {
			return true
		}
		switch n.DataAtom {
		case atom.Input:
			f.inputs = append(f.inputs, n)
			if t := strings.ToLower(attr(n, "type")); t == "submit" || t == "image" {
				f.buttons = append(f.buttons, n)
			}
		case atom.Select, atom.Textarea:
			f.inputs = append(f.inputs, n)
		case atom.Button:
			if t := strings.ToLower(attr(n, "type")); t == "" || t == "submit" {
				f.buttons = append(f.buttons, n)
			}
		}
		return true
	})
	return f
}

// walk visits n and its descendants in document order while visit returns true.
func walk(n *html.Node, visit func(*html.Node) bool) bool {
	if !visit(n) {
		return false
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if !walk(c, visit) {
			return false
		}
	}
	return true
}

func inside(n, ancestor *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p == ancestor {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return true
		}
	}
	return false
}

func valueOr(n *html.Node, def string) string {
	if hasAttr(n, "value") {
		return attr(n, "value")
	}
	return def
}

// selected is the value a browser submits for a select: the selected option, else the first.
func selected(sel *html.Node) string {
	var first, chosen *html.Node
	walk(sel, func(n *html.Node) bool {
		if n.DataAtom == atom.Option {
			if first == nil {
				first = n
			}
			if chosen == nil && hasAttr(n, "selected") {
				chosen = n
			}
		}
		return true
	})
	if chosen == nil {
		chosen = first
	}
	if chosen == nil {
		return ""
	}
	if hasAttr(chosen, "value") {
		return attr(chosen, "value")
	}
	return strings.TrimSpace(textOf(chosen))
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) bool {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
		return true
	})
	return b.String()
}

// pageText summarises a page for an error message: its elements of class "error" if any, else
// its visible text, shortened.
func pageText(doc *html.Node) string {
	var parts []string
	walk(doc, func(n *html.Node) bool {
		if n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " error ") {
			parts = append(parts, strings.Join(strings.Fields(textOf(n)), " "))
		}
		return true
	})
	text := strings.Join(parts, "; ")
	if text == "" {
		var all []string
		walk(doc, func(n *html.Node) bool {
			if n.Type == html.TextNode && !insideAny(n, atom.Script, atom.Style, atom.Head) {
				all = append(all, strings.Fields(n.Data)...)
			}
			return true
		})
		text = strings.Join(all, " ")
	}
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return text
}

func insideAny(n *html.Node, atoms ...atom.Atom) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		for _, a := range atoms {
			if p.DataAtom == a {
				return true
			}
		}
	}
	return false
}
