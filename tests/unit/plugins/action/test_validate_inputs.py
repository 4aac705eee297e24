from ansible_collections.yoroi.baseline.plugins.action import validate_inputs as vi


def test_every_role_option_and_site_variable_is_known():
    specs = vi.load_specs()
    assert "yoroi_accounts_max_inactive_days" in specs
    assert "yoroi_site" in specs
    assert all(name.startswith("yoroi_") for name in specs)


def test_typo_is_refused_with_a_suggestion():
    errors = vi.check({"yoroi_accounts_max_inactive_dayz": 3}, vi.load_specs())
    assert errors == ["unknown variable yoroi_accounts_max_inactive_dayz (did you mean yoroi_accounts_max_inactive_days?)"]


def test_wrong_type_and_choice_name_the_variable():
    errors = vi.check({"yoroi_accounts_max_inactive_days": "soon", "yoroi_accounts_stale_action": "delete"}, vi.load_specs())
    assert any("yoroi_accounts_max_inactive_days" in e for e in errors)
    assert any("yoroi_accounts_stale_action" in e for e in errors)


def test_good_values_pass_and_other_variables_are_ignored():
    assert vi.check({"yoroi_accounts_max_inactive_days": "30", "ansible_user": "x", "yoroi_site": "hq"}, vi.load_specs()) == []


def test_out_of_range_numbers_are_refused_naming_the_variable():
    errors = vi.check({"yoroi_password_policy_minlen": "4", "yoroi_accounts_max_inactive_days": 0}, vi.load_specs(), vi.load_rules())
    assert "yoroi_password_policy_minlen must be from 8 to 128, got 4" in errors
    assert "yoroi_accounts_max_inactive_days must be from 1 to 3650, got 0" in errors


def test_role_ranges_match_the_module_bounds():
    from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import password_policy

    ranges = vi.load_rules()["ranges"]
    for option, bounds in password_policy.RANGES.items():
        assert ranges["yoroi_password_policy_" + option] == bounds, option


def test_patterns_are_enforced_naming_the_variable():
    rules = vi.load_rules()
    errors = vi.check({"yoroi_mfa_deadline": "next friday"}, vi.load_specs(), rules)
    assert len(errors) == 1 and errors[0].startswith("yoroi_mfa_deadline: 'next friday' does not have the expected form")
    assert vi.check({"yoroi_mfa_deadline": "2027-03-31"}, vi.load_specs(), rules) == []
    assert vi.check({"yoroi_mfa_deadline": ""}, vi.load_specs(), rules) == []


def test_every_rule_names_a_declared_variable():
    specs = vi.load_specs()
    rules = vi.load_rules()
    for kind in vi.RULE_KINDS:
        if kind == "internal":  # also every name the role tasks register or set, declared nowhere
            continue
        for path in rules[kind]:
            name = vi._parse_path(path)[0]
            assert name in specs and name not in rules["internal"], (kind, path)
