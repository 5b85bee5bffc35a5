package tokens

import "fmt"

// MessagingEmail is the policy for the email claims of Messaging tokens
// (--zendesk-messaging-email).
type MessagingEmail string

const (
	// EmailVerified sends email with email_verified:true when the IdP
	// verified the address, and nothing otherwise (the default). Zendesk
	// then attaches the address to the user as a verified identity: "Both
	// the email and email_verified: true claims are required" (Zendesk,
	// "Email identities", developer.zendesk.com/documentation/
	// zendesk-web-widget-sdks/email_identities).
	EmailVerified MessagingEmail = "verified"
	// EmailOmit never sends an email in a Messaging token. Zendesk answers
	// 409 when a verified email already belongs to another external_id, and
	// documents that "If the JWT does not include the email claim, then the
	// conflict would not occur" (support.zendesk.com/hc/en-us/articles/
	// 7554200230170). The price: agents see no email for the user until
	// another channel (SSO, a ticket) supplies it.
	EmailOmit MessagingEmail = "omit"
)

// ParseMessagingEmail accepts the flag's values, exactly.
func ParseMessagingEmail(s string) (MessagingEmail, error) {
	switch p := MessagingEmail(s); p {
	case EmailVerified, EmailOmit:
		return p, nil
	}
	return "", fmt.Errorf("tokens: messaging email policy %q (want %s or %s)", s, EmailVerified, EmailOmit)
}

// checkEmailPolicy accepts a policy for a flavor: omit exists for messaging
// only, because Chat, SSO and SDK cannot be minted without an email.
func checkEmailPolicy(f Flavor, p MessagingEmail) error {
	switch p {
	case "", EmailVerified:
		return nil
	case EmailOmit:
		if f != Messaging {
			return fmt.Errorf("tokens: %s: the email policy %q is for messaging only", f, p)
		}
		return nil
	}
	_, err := ParseMessagingEmail(string(p))
	return err
}

// chatEmailRule is Zendesk Chat's documented rule on the email claim:
// "Accented characters are not allowed in the email address" (Zendesk,
// "Enabling authenticated visitors in the Chat widget",
// support.zendesk.com/hc/en-us/articles/4408838925082). zdgate reads it as
// "ASCII only", the only set without accented letters that every mail
// system agrees on.
const chatEmailRule = "has non-ASCII (accented) characters, which Zendesk Chat does not accept"

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
