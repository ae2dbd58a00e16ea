"""Realistic person names for the generated ledgers: common given names and surnames from
several languages, drawn with a skew (a few names are very common, as in life), so a large
ledger has the namesakes identity matching must cope with (many "James Smith"s, accents,
surname-first orders)."""

from __future__ import annotations

import random

GIVEN = """James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew
Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald
Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy
Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole
Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra Frank Rachel
Patrick Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth
José Julie Adam Olivia Nathan Joyce Henry Virginia Douglas Victoria Zachary Kelly Peter Lauren
Kyle Christina Noah Joan Ethan Evelyn Jeremy Judith Walter Megan Christian Andrea Keith Cheryl
Roger Hannah Terry Jacqueline Austin Martha Sean Gloria Gerald Teresa Carl Ann Harold Sara
Dylan Madison Arthur Frances Lawrence Kathryn Jordan Janice Jesse Jean Bryan Abigail Billy
Alice Bruce Judy Gabriel Sophia Joe Grace Logan Denise Albert Amber Willie Doris Alan Marilyn
Wei Fang Hiroshi Yuki Priya Arjun Ananya Rahul Mohammed Fatima Ahmed Aisha Olga Dmitri Sofía
Mateo Lucía Camila Santiago Valentina Léa Chloé Lukas Jürgen Søren Zoë Björn Małgorzata Nguyen
Thanh Minh Kwame Amara Chinedu Ngozi Morgan Avery Riley Casey Taylor Jamie Robin""".split()

SURNAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans
Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez
Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks
Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers
Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson
Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham
Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar
Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy
Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter
Gordon Mendez Silva Shaw Snyder Mason Dixon Muñoz Hunt Hicks Holmes Palmer Wagner Black Robertson
Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols
Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vázquez
Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane
Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Peña Richards Willis
Wang Li Zhang Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Tanaka Suzuki Watanabe Sato Ito
Yamamoto Nakamura Kobayashi Singh Kumar Sharma Gupta Das Reddy Khan Ali Hussain Ivanov Petrov
Smirnov Müller Schneider Fischer Weber Schäfer Dubois Lefèvre Moreau Laurent Rossi Russo Ferrari
Esposito Bianchi Nowak Kowalski Wiśniewski Okafor Mensah Adeyemi Okonkwo Park Choi Jung Kang
Novak Horvat Jensen Nielsen Larsen Andersen Johansson Karlsson Nilsson O'Brien O'Connor
Murphy-Jones García-López""".split()


def names(rng: random.Random):
    """An endless stream of person names, skewed so that common names repeat."""
    while True:
        given = GIVEN[min(len(GIVEN) - 1, int(len(GIVEN) * rng.random() ** 1.8))]
        surname = SURNAMES[min(len(SURNAMES) - 1, int(len(SURNAMES) * rng.random() ** 1.8))]
        roll = rng.random()
        if roll < 0.05:
            yield f"{surname}, {given}"
        elif roll < 0.10:
            yield f"{given} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {surname}"
        else:
            yield f"{given} {surname}"
