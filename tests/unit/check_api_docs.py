#!/usr/bin/env python3
"""Every function a public header declares (include/scpkit/*.h) has its own
comment right above it (issue 13 item 7: what it needs, what it returns,
what it leaves on error); doxygen shows that comment as the function's
documentation (docs/doxygen_filter.sh). Doxygen itself cannot warn on
undocumented functions alone: with EXTRACT_ALL off it also warns on every
struct field and macro. Usage: check_api_docs.py [include/scpkit]
Exit 0 when every declaration is documented, 1 (listing them) otherwise.
With --self-test, checks the checker on made-up headers."""
import os
import re
import sys

# a declaration starts at column 0 with a return type and a scp name
DECL = re.compile(r'^(?:SCP_MUST_CHECK\s+)?(?:const\s+)?[a-z_][a-z0-9_]*(?:\s+[a-z_][a-z0-9_]*)*'
                  r'[\s*]+(scp[a-z0-9_]*)\s*\(')


def undocumented(text):
    """Names of the functions declared in text without a comment ending on
    the line just above the declaration."""
    lines = text.split('\n')
    missing = []
    depth = 0  # inside a struct/enum body: fields, not declarations
    for i, line in enumerate(lines):
        if depth == 0:
            m = DECL.match(line)
            if m and not line.startswith(('typedef', '#', 'return')):
                prev = lines[i - 1].rstrip() if i > 0 else ''
                if not prev.endswith('*/'):
                    missing.append(m.group(1))
        depth += line.count('{') - line.count('}')
        if line.startswith('extern "C" {') or line.startswith('}') and 'extern' in line:
            depth = 0
    return missing


def self_test():
    good = '/* Adds. */\nint scp_add(int a);\n/* Ends.\n * really. */\nvoid scp_end(void);\n'
    bad = '/* Adds. */\nint scp_add(int a);\nvoid scp_sub(int a);\n\nint scp_mul(int a);\n'
    typed = 'typedef struct x {\n    int scp_not_a_function(int);\n} x;\n/* ok */\nint scp_f(void);\n'
    ext = '#ifdef __cplusplus\nextern "C" {\n#endif\nSCP_MUST_CHECK int scp_g(void);\n'
    ok = (undocumented(good) == [] and undocumented(bad) == ['scp_sub', 'scp_mul'] and
          undocumented(typed) == [] and undocumented(ext) == ['scp_g'])
    print('check_api_docs self-test:', 'ok' if ok else 'FAILED')
    return 0 if ok else 1


def main(argv):
    if '--self-test' in argv:
        return self_test()
    inc = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), '../../include/scpkit')
    bad = []
    total = 0
    for name in sorted(os.listdir(inc)):
        if not name.endswith('.h'):
            continue
        text = open(os.path.join(inc, name)).read()
        total += sum(1 for l in text.split('\n') if DECL.match(l) and not l.startswith('typedef'))
        bad += ['%s: %s' % (name, f) for f in undocumented(text)]
    for b in bad:
        print('undocumented: ' + b)
    print('check_api_docs: %d declarations, %d without their own comment' % (total, len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
