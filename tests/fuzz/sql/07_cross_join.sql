SELECT max(r0.valid_to) FROM reference.trade_remedies r0, reference.trade_remedies r1, reference.trade_remedies r2, reference.trade_remedies r3
