// Package tokens mints and checks the JSON Web Tokens that Zendesk accepts
// from a customer's server to say who an end user is.
//
// Zendesk has several unrelated JWT systems ("flavors"), each with its own
// secret, header and claim rules; mixing them up is the most common reason a
// Zendesk login fails with a bare 401. This package is the only place in
// zdgate that knows those rules and claim names, so the rest of the program
// deals in a [User] and a [Flavor] and never in claim maps.
//
// The identity in a token must come from the identity provider, never from
// the browser: [Mapping] turns verified IdP claims into a [User], emitting
// an email only when the IdP said email_verified:true and privileged Help
// Center claims (role, tags, user fields, ...) only when an operator mapped
// them explicitly. [Signer] turns a User into a token of one flavor, and
// [Verify] checks a token against every rule of a flavor, reporting each
// broken rule rather than only the first.
//
// The package never logs and never puts a secret, a token or a user's data
// in an error message.
package tokens
