#!/usr/bin/env python3
"""Random small templates for the differential test (t_template_random.sh).

Writes JSON Lines {"src", "ctx"}: templates drawn from a grammar of the constructs
dk_template implements (literals, operators, members, slices, string methods, filters,
tests, if/for/set/macro/namespace/break/continue/filter blocks, whitespace control,
comments), over a fixed context of the value kinds the chat templates see. Many are
errors on purpose; the test only asks both renderers to agree. Deterministic per seed.
"""
import argparse
import json
import random

CTX = {
    "s": "  Hello, World\n", "zh": "你好，世界 😀", "e": "", "n": 7, "m": -3, "f": 2.5, "z": 0,
    "t": True, "no": False, "nul": None,
    "l": [3, 1, 2], "ls": ["b", "A", "c"], "le": [],
    "d": {"a": 1, "b": "two", "c": [1, 2], "1": "one"},
    "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi <think>x</think> y"},
             {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": {"k": 1}}}]},
             {"role": "tool", "content": "{\"ok\": true}"}, {"role": "assistant", "content": "done", "reasoning_content": "r"}],
}
NAMES = list(CTX) + ["undef", "true", "false", "none", "loop", "ns"]
STRS = ["'a'", "''", "\"x y\"", "'\\n'", "'a,b,,c'", "' pad '", "'<think>'", "'\\u00e9\\t'", "'A'", "'1'", "'2.5'",
        "'\\x41\\\\'", "\"q'\\\"\"", "'\\ud83d\\ude00'", "' 0x1F '", "'-3'", "'\\r\\n'"]
FILTERS = ["length", "trim", "upper", "lower", "title", "capitalize", "tojson", "tojson(indent=2)", "first", "last",
           "join", "join(', ')", "list", "reverse", "sort", "unique", "int", "float", "string", "abs",
           "default('z')", "default('z', true)", "items", "indent", "indent(2, true)", "map(attribute='role')",
           "selectattr('content')", "rejectattr('role', 'equalto', 'tool')", "replace('a', 'b')", "safe",
           "dictsort", "sort(reverse=true)", "int(9)", "tojson(separators=(',', ':'))", "bogus"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "iterable", "mapping", "sequence",
         "boolean", "odd", "even", "true", "false", "lower", "upper", "callable"]
METHODS = ["upper()", "lower()", "strip()", "lstrip()", "rstrip('\\n')", "title()", "split()", "split(',')",
           "split(',', 1)", "startswith('a')", "endswith(('d', '\\n'))", "replace('l', 'L')", "replace('', '-', 2)",
           "get('a')", "get('q', 'dflt')", "items()", "keys()", "values()", "capitalize()", "length"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]


class Gen:
    def __init__(self, rng):
        self.r = rng

    def atom(self, d):
        r = self.r.random()
        if r < 0.25:
            return self.r.choice(NAMES)
        if r < 0.4:
            return str(self.r.choice([0, 1, 2, 3, 10, -1, -2]))
        if r < 0.47:
            return self.r.choice(["0.5", "1.0", "2.25", "-0.0", "3.0"])
        if r < 0.65:
            return self.r.choice(STRS)
        if r < 0.75 and d < 3:
            return "[" + ", ".join(self.expr(d + 1) for _ in range(self.r.randint(0, 3))) + "]"
        if r < 0.8 and d < 3:
            return "{" + ", ".join(f"{self.r.choice(STRS)}: {self.expr(d + 1)}" for _ in range(self.r.randint(0, 2))) + "}"
        if r < 0.85 and d < 3:
            return "(" + self.expr(d + 1) + ")"
        if r < 0.9:
            return f"range({self.r.randint(0, 4)})"
        return self.r.choice(["namespace(a=1)", "ns.v", "loop.index", "loop.last"])

    def postfix(self, e, d):
        r = self.r.random()
        if r < 0.2:
            return f"{e}.{self.r.choice(METHODS)}"
        if r < 0.3:
            return f"{e}[{self.r.choice(['0', '-1', '1', 2, repr('a'), repr('role'), 'n'])}]"
        if r < 0.4:
            parts = [self.r.choice(["", "1", "-1", "0", "2", "-2"]) for _ in range(self.r.randint(2, 3))]
            return f"{e}[{':'.join(parts)}]"
        if r < 0.5:
            return f"{e}.{self.r.choice(['role', 'content', 'a', 'c', 'tool_calls', 'nope', 'length'])}"
        return e

    def num(self, d):
        r = self.r.random()
        if d > 2 or r < 0.4:
            return self.r.choice(["n", "m", "f", "z", "1", "2", "-1", "0.5", "3.0", "(l | length)", "(s | length)",
                                  "loop.index", "d.a", "(zh | length)", "(t | int)"])
        if r < 0.8:
            return f"({self.num(d + 1)} {self.r.choice(['+', '-', '*', '/', '//', '%', '**'])} {self.num(d + 1)})"
        return f"-{self.num(d + 1)}"

    def string(self, d):
        r = self.r.random()
        if d > 2 or r < 0.35:
            return self.r.choice(STRS + ["s", "zh", "e", "d.b", "msgs[1].content", "msgs[0]['role']"])
        if r < 0.55:
            return f"({self.string(d + 1)}).{self.r.choice(METHODS[:7] + METHODS[11:13] + ['capitalize()'])}"
        if r < 0.7:
            return f"({self.string(d + 1)} {self.r.choice(['~', '+'])} {self.r.choice([self.string(d + 1), self.num(d + 1)])})"
        if r < 0.8:
            return f"({self.string(d + 1)} | {self.r.choice(['trim', 'upper', 'lower', 'title', 'tojson', 'string', 'indent', 'replace(' + repr('l') + ', ' + repr('_') + ')', 'join(' + repr('.') + ')'])})"
        if r < 0.9:
            parts = [self.r.choice(["", "1", "-1", "0", "2", "-2"]) for _ in range(self.r.randint(2, 3))]
            return f"({self.string(d + 1)})[{':'.join(parts)}]"
        return f"({self.string(d + 1)}).split({self.r.choice(['', repr(','), repr(' '), 'none, 1'])})[{self.r.choice(['0', '-1'])}]"

    def boolean(self, d):
        r = self.r.random()
        if d > 2 or r < 0.3:
            return f"{self.expr(d + 1)} is {self.r.choice(['', 'not '])}{self.r.choice(TESTS)}"
        if r < 0.5:
            return f"{self.num(d + 1)} {self.r.choice(['<', '>', '<=', '>=', '==', '!='])} {self.num(d + 1)}"
        if r < 0.65:
            return f"{self.string(d + 1)} {self.r.choice(['in', 'not in', '==', '!='])} {self.r.choice([self.string(d + 1), 'd', 'ls'])}"
        if r < 0.8:
            return f"{self.boolean(d + 1)} {self.r.choice(['and', 'or'])} {self.boolean(d + 1)}"
        return f"not {self.boolean(d + 1)}"

    def lst(self, d):
        r = self.r.random()
        if d > 2 or r < 0.4:
            return self.r.choice(["l", "ls", "le", "msgs", "d.c", "[1, 'a', none, true, 2.5]", "range(4)", "d.items()",
                                  "d.keys()", "(1, 2)", "s.split()"])
        if r < 0.7:
            return f"({self.lst(d + 1)} | {self.r.choice(['reverse', 'sort', 'unique', 'list', 'map(attribute=' + repr('role') + ')', 'selectattr(' + repr('content') + ')', 'rejectattr(' + repr('role') + ', ' + repr('equalto') + ', ' + repr('tool') + ')'])})"
        if r < 0.85:
            parts = [self.r.choice(["", "1", "-1", "0", "2", "-2"]) for _ in range(self.r.randint(2, 3))]
            return f"({self.lst(d + 1)})[{':'.join(parts)}]"
        return f"({self.lst(d + 1)} + {self.lst(d + 1)})"

    def expr(self, d=0):
        r = self.r.random()
        if r < 0.25:
            e = self.string(d)
        elif r < 0.45:
            e = self.num(d)
        elif r < 0.6:
            e = self.boolean(d)
        elif r < 0.75:
            e = self.lst(d)
        elif r < 0.82:
            e = f"({self.lst(d)} | {self.r.choice(['first', 'last', 'length', 'join', 'join(' + repr(', ') + ')', 'tojson', 'tojson(indent=2)', 'string', 'tojson(separators=(' + repr(',') + ', ' + repr(':') + '))'])})"
        elif r < 0.87:
            e = f"{self.expr(d + 1)} if {self.boolean(d + 1)} else {self.expr(d + 1)}"
        elif r < 0.9:
            e = f"{self.expr(d + 1)} if {self.boolean(d + 1)}"
        elif r < 0.95:
            e = self.postfix(self.atom(d), d)
        else:
            e = f"{self.atom(d)} {self.r.choice(BINOPS)} {self.atom(d)}"
        return e

    def text(self):
        return self.r.choice(["", "x", " ", "\n", "  \n", "\n  ", "a b", "\t", "\u3000", " y\n\n", "\r\n", " \r\n  ",
                              "\n\t", "\u2028 ", "\u00a0\n"])

    def tag_open(self, kind):
        return "{" + kind + self.r.choice(["", "", "-"]) + " "

    def tag_close(self, kind):
        return " " + self.r.choice(["", "", "-"]) + kind + "}"

    def stmt(self, d=0, in_loop=False):
        r = self.r.random()
        o, c = self.tag_open("%"), self.tag_close("%")
        ind = self.r.choice(["", "", "  ", "\n", "\n    "])
        if r < 0.3 or d > 2:
            return self.text() + self.tag_open("{") + self.expr() + self.tag_close("}") + self.text()
        if r < 0.45:
            body = self.block(d + 1, in_loop)
            s = f"{ind}{o}if {self.expr()}{c}{body}"
            if self.r.random() < 0.3:
                s += f"{ind}{o}elif {self.expr()}{c}{self.block(d + 1, in_loop)}"
            if self.r.random() < 0.4:
                s += f"{ind}{o}else{c}{self.block(d + 1, in_loop)}"
            return s + f"{ind}{o}endif{c}"
        if r < 0.62:
            var, it = self.r.choice([("x", "l"), ("x", "ls"), ("x", "le"), ("m", "msgs"), ("x", "d"), ("k, v", "d.items()"),
                                     ("x", "range(3)"), ("m", "msgs[::-1]"), ("x", self.lst(1)), ("x", self.expr(1))])
            if self.r.random() < 0.2:
                it += f" if {self.expr(1)}"
            s = f"{ind}{o}for {var} in {it}{c}{self.block(d + 1, True)}"
            if self.r.random() < 0.3:
                s += f"{o}else{c}{self.block(d + 1, in_loop)}"
            return s + f"{ind}{o}endfor{c}"
        if r < 0.72:
            tgt = self.r.choice(["y", "y", "y", "a, b", "n"])
            return f"{ind}{o}set {tgt} = {self.expr()}{c}"
        if r < 0.76:
            return f"{o}set ns = namespace(v={self.expr(1)}){c}"
        if r < 0.8:
            return f"{o}set y{c}{self.block(d + 1, in_loop)}{o}endset{c}"
        if r < 0.82:
            return (f"{o}macro mm(p, q='Q'){c}{self.block(d + 1, in_loop)}{o}endmacro{c}"
                    f"{{{{ mm({self.expr(1)}) }}}}{{{{ mm(1, q={self.expr(1)}) }}}}")
        if r < 0.84:
            body = self.r.choice(["{{ kwargs }}", "{{ varargs }}", "{{ varargs | length }}{{ kwargs.k }}",
                                  "{% set kwargs = 2 %}{{ kwargs }}", "{% for varargs in l %}{% endfor %}{{ varargs }}"])
            return (f"{o}macro mv(p){c}{{{{ p }}}}{body}{o}endmacro{c}"
                    f"{{{{ mv({self.expr(1)}, {self.expr(1)}) }}}}{{{{ mv(1, k={self.expr(1)}) }}}}{{{{ mv(p=2) }}}}")
        if r < 0.86:
            return (f"{o}macro mc(a){c}<{{{{ caller(a) }}}}|{{{{ caller(a, 1) if a is number }}}}>{o}endmacro{c}"
                    f"{o}call(x, y=0) mc({self.expr(1)}){c}{self.block(d + 1, in_loop)}{{{{ x }}}}{{{{ y }}}}{o}endcall{c}")
        if r < 0.9 and in_loop:
            return f"{o}{self.r.choice(['break', 'continue'])}{c}"
        if r < 0.94:
            return f"{o}filter {self.r.choice(['upper', 'trim', 'length', 'replace(' + repr('a') + ', ' + repr('b') + ')'])}{c}{self.block(d + 1, in_loop)}{o}endfilter{c}"
        return "{#" + self.r.choice(["", "-"]) + " c " + self.r.choice(["", "-"]) + "#}"

    def block(self, d=0, in_loop=False):
        return "".join(self.stmt(d, in_loop) for _ in range(self.r.randint(1, 3)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    g = Gen(random.Random(args.seed))
    with open(args.out, "w", encoding="utf-8") as f:
        for _ in range(args.n):
            f.write(json.dumps({"src": g.block(), "ctx": CTX}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
