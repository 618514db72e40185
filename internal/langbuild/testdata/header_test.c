/* header_test.c: checks the pure helpers of sdk/c/wedge_proxy_wasm.h (the
 * JSON lookups and the header-map serialization). Built as a WASI command
 * and run in wazero by langbuild_test.go; exits 1 after printing each
 * failure. */
#include <assert.h>

#include "wedge_proxy_wasm.h"

static int failures;

#define CHECK(cond)                                          \
  do {                                                       \
    if (!(cond)) {                                           \
      printf("%s:%d: %s\n", __FILE__, __LINE__, #cond);      \
      failures++;                                            \
    }                                                        \
  } while (0)

int main(void) {
  const char *cfg = " {\"name\": \"a\\\"b\\\\c\", \"nested\": {\"rate\": 1, \"x\": [1, {\"y\": \"}\"}]},"
                    " \"list\": [\"rate\", 2], \"rate\" : 2.5e1, \"burst\":-3, \"t\": true} ";
  double d = 0;
  CHECK(wedge_json_number(cfg, "rate", &d) && d == 25);
  CHECK(wedge_json_number(cfg, "burst", &d) && d == -3);
  CHECK(!wedge_json_number(cfg, "name", &d));
  CHECK(!wedge_json_number(cfg, "t", &d));
  CHECK(!wedge_json_number(cfg, "y", &d)); /* only top-level members */
  CHECK(!wedge_json_number(cfg, "missing", &d));
  char *s = wedge_json_string(cfg, "name");
  CHECK(s != NULL && strcmp(s, "a\"b\\c") == 0);
  free(s);
  CHECK(wedge_json_string(cfg, "rate") == NULL);
  CHECK(wedge_json_member("[1]", "a") == NULL);
  CHECK(wedge_json_member("{\"a\": ", "b") == NULL);
  CHECK(wedge_json_member("{\"a\": \"unterminated", "b") == NULL);
  CHECK(wedge_json_member("", "a") == NULL);
  CHECK(wedge_json_member("{}", "a") == NULL);

  const char *pairs[] = {"a", "bc", "", "x"};
  size_t len = 0;
  char *m = wedge_serialize_pairs(pairs, 2, &len);
  static const char want[] = "\x02\0\0\0" "\x01\0\0\0" "\x02\0\0\0" "\0\0\0\0" "\x01\0\0\0" "a\0bc\0" "\0x\0";
  CHECK(m != NULL && len == sizeof want - 1 && memcmp(m, want, len) == 0);
  free(m);
  m = wedge_serialize_pairs(NULL, 0, &len);
  CHECK(m != NULL && len == 4 && memcmp(m, "\0\0\0\0", 4) == 0);
  free(m);
  return failures ? 1 : 0;
}
