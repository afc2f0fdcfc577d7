SELECT COUNT(*) FROM declarations WHERE lane = 'a' OR lane = 'b' OR lane = 'c' OR lane = 'd' OR lane = 'e' OR (lane = 'f' AND (office_code = 'x' OR (office_code = 'y' AND (regime = 'z'))))
