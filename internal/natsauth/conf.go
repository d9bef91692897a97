package natsauth

import (
	"fmt"
	"strings"
)

// Conf renders users as a nats-server authorization block, each admitted
// by the public nkey that pub returns for its ID, or by the variable it
// names ("$NKEY_GATEWAY": nats-server reads it from its environment). Every anonymous
// connection is then refused: with users configured, nats-server admits
// no one else.
func Conf(users []User, pub func(id string) (string, error)) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		key, err := pub(u.ID)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(key, "$") {
			key = quote(key)
		}
		fmt.Fprintf(&b, "    # %s\n    {\n      nkey: %s\n      permissions: {\n", describe(u), key)
		writePerm(&b, "publish", u.Publish, u.PublishDeny)
		writePerm(&b, "subscribe", u.Subscribe, u.SubscribeDeny)
		if u.Responses {
			fmt.Fprintf(&b, "        allow_responses: {max: 1, expires: %s}\n", quote(u.ReplyTTL.String()))
		}
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func describe(u User) string {
	if u.Role == RoleWorker {
		return "worker " + u.Name
	}
	return string(u.Role)
}

func writePerm(b *strings.Builder, name string, allow, deny []string) {
	if allow == nil && deny == nil {
		return
	}
	fmt.Fprintf(b, "        %s: {\n", name)
	// An empty allow list still has to be written: without one,
	// nats-server allows everything not denied.
	fmt.Fprintf(b, "          allow: %s\n", list(allow))
	if len(deny) > 0 {
		fmt.Fprintf(b, "          deny: %s\n", list(deny))
	}
	b.WriteString("        }\n")
}

func list(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quote makes a string for the config: subjects hold no quote or
// backslash (subject tokens are escaped), and quoting keeps "$SYS" from
// being read as a variable.
func quote(s string) string { return `"` + s + `"` }
