"""The YAML rule language: load, check and compile rulesets that rule authors write."""
