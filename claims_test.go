package metro_test

import (
	"encoding/base64"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/metropolis-dev/metro"
)

func TestClaims(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name, header string
		want         map[string]any
	}{
		{"none", "", nil},
		{"claims", enc([]byte(`{"sub":"alice","roles":["admin"],"exp":1900000000}`)),
			map[string]any{"sub": "alice", "roles": []any{"admin"}, "exp": float64(1900000000)}},
		{"padded", base64.URLEncoding.EncodeToString([]byte(`{"sub":"ab"}`)), map[string]any{"sub": "ab"}},
		{"not base64", "!!!", nil},
		{"not an object", enc([]byte(`[1,2]`)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("Metro-Claims", tc.header)
			}
			if got := metro.Claims(r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Claims = %#v, want %#v", got, tc.want)
			}
		})
	}
}
