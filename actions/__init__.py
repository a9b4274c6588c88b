"""rasa-sdk custom actions. They decide what to say (a response key and its variables) and
call into `bot/` for everything else; the NLG decides how it is said."""
