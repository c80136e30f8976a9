"""The YAML rule language: load, check and compile rulesets that rule authors write.

The worker's whole interface:

>>> from rules import default_ruleset_path, load_ruleset
>>> ruleset = load_ruleset(default_ruleset_path())    # raises RuleError listing every problem
>>> ruleset.program.n_rules == len(ruleset.rules)
True
"""

from rules.errors import Problem, RuleError
from rules.ruleset import CompiledRuleset, RuleInfo, default_ruleset_path, load_ruleset

__all__ = ["CompiledRuleset", "Problem", "RuleError", "RuleInfo", "default_ruleset_path", "load_ruleset"]
